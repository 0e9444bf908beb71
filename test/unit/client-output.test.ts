import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchView, VmView } from '../../client/batch-view';
import { statusJson } from '../../client/batch-view';
import { REPORT_COLUMNS, reportRows } from '../../client/commands/report';
import { exitCodeFor } from '../../client/commands/status';
import { paint, useColor } from '../../client/output/color';
import { renderProblems } from '../../client/output/problems';
import { renderReport } from '../../client/output/report';
import { changeLines, progressBar, renderStatus } from '../../client/output/status';
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
  assert.deepEqual(Object.keys(json.vms[0]!), ['name', 'phase', 'percent', 'conversionTaskId', 'instanceId', 'error']);
  assert.deepEqual(json.vms[8], {
    name: 'vm-8',
    phase: 'Completed',
    percent: 100,
    conversionTaskId: 'import-i-1',
    instanceId: 'i-1',
    error: null,
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
    'name,status,instance_id,volume_id,conversion_task_id,bytes_uploaded,started_at,finished_at,duration_s,error_type,error_message'
  );
  assert.equal(
    csv[1],
    'a,Failed,,,,5,2026-01-01T00:00:00.000Z,2026-01-01T00:01:00.000Z,60,ConversionFailed,"bad ""x"", y'
  );
  assert.equal(csv[2], 'second line"');
  assert.equal(csv[3], 'b|c,Completed,i-1,vol-1,import-i-1,7,2026-01-01T00:00:00.000Z,2026-01-01T00:00:30.400Z,30,,');

  const json = JSON.parse(renderReport(rows, 'json')) as typeof rows;
  assert.deepEqual(json, rows);

  const md = renderReport(rows, 'md').split('\n');
  assert.equal(md.length, 5);
  assert.equal(md[0], `| ${REPORT_COLUMNS.join(' | ')} |`);
  assert.match(md[2]!, /bad "x", y second line \|$/);
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
