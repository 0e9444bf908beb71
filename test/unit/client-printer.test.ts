/**
 * Every command's result through the one printer, as people read it and as --json prints it (the JSON is a
 * contract: tests and users parse it), including failed VMs and empty batches; each command's exit code;
 * and the registry: every command has a summary and an example in its --help.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import type { BatchView, VmView } from '../../client/batch-view';
import { statusJson } from '../../client/batch-view';
import { COMMANDS } from '../../client/commands';
import type { AnyCommand, Call } from '../../client/commands/command';
import { addCommand } from '../../client/commands/command';
import { reportRows } from '../../client/commands/report';
import type { Io } from '../../client/main';
import { main } from '../../client/main';
import type { PrintOptions } from '../../client/output/printer';
import { Printer } from '../../client/output/printer';
import { renderReport } from '../../client/output/report';
import { BATCH_LIVE, renderStatus } from '../../client/output/status';
import type { Phase } from '../../common/contracts/migration';
import { vmSpecSchema } from '../../common/contracts/migration';
import { tempDir } from '../helpers/testbed';

let dir: { dir: string; remove(): Promise<void> };
before(async () => (dir = await tempDir('vmconvoy-printer-')));
after(async () => dir?.remove());

interface Captured {
  io: Io;
  stdout: () => string;
  stderr: () => string;
}

function capture(over: Partial<Io> = {}): Captured {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => (stdout += `${t}\n`),
    err: (t) => (stderr += `${t}\n`),
    write: (t) => (stdout += t),
    writeErr: (t) => (stderr += t),
    tty: false,
    color: false,
    ...over,
  };
  return { io, stdout: () => stdout, stderr: () => stderr };
}

const spec = (name: string): AnyCommand => {
  const found = COMMANDS.find((c) => c.name === name);
  assert.ok(found, `command ${name} is registered`);
  return found;
};

/** What the command prints for `value`: its text (json false) or its --json. */
async function printed(
  name: string,
  value: unknown,
  call: Call<object> = { args: ['b1'], opts: {} },
  over: Partial<Io> & { json?: boolean; print?: PrintOptions } = {}
): Promise<{ stdout: string; stderr: string }> {
  const { json = false, print, ...io } = over;
  const c = capture(io);
  const view = spec(name).view;
  assert.ok(view, `${name} has a view`);
  await new Printer(c.io, json).print(value, view, call, print);
  return { stdout: c.stdout(), stderr: c.stderr() };
}

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

const FAILED_BATCH: BatchView = {
  batch: 'b1',
  state: 'failed',
  total: 2,
  vms: [
    vm('db-01', 'Failed', { errorType: 'ConversionFailed', error: 'Unsupported kernel version 2.6.18' }),
    vm('web-01', 'Completed', { instanceId: 'i-0abc', conversionTaskId: 'import-i-0abc', volumeId: 'vol-1' }),
  ],
};
const EMPTY_BATCH: BatchView = { batch: 'b1', state: 'running', total: 3, vms: [] };

test('validate: the problems or a summary as text, the result itself as JSON', async () => {
  const spec1 = vmSpecSchema.parse({ name: 'a', image: '/i/a.raw', architecture: 'x86_64', instanceType: 't2.micro' });
  const valid = {
    ok: true,
    rows: [
      { row: 0, line: 2, spec: { ...spec1, wave: 1 } },
      { row: 1, line: 3, spec: { ...spec1, name: 'b', wave: 2 } },
    ],
  };
  const call = { args: ['inv.csv'], opts: {} };
  assert.equal(
    (await printed('validate', valid, call)).stdout,
    '✔ inv.csv: 2 VMs in 2 waves, every row and image valid\n'
  );
  const invalid = { ok: false, errors: [{ line: 2, column: 'name', message: '"vm 1": use 1-64 characters' }] };
  assert.equal(
    (await printed('validate', invalid, call)).stdout,
    'inv.csv:2 [name]: "vm 1": use 1-64 characters\n✖ 1 problem in inv.csv; nothing was started\n'
  );
  const json = await printed('validate', invalid, call, { json: true });
  assert.equal(
    json.stdout,
    '{\n  "ok": false,\n  "errors": [\n    {\n      "line": 2,\n      "column": "name",\n      "message": "\\"vm 1\\": use 1-64 characters"\n    }\n  ]\n}\n'
  );
  assert.equal(spec('validate').exit?.(invalid, call, undefined)?.code, 1);
  assert.equal(spec('validate').exit?.(valid, call, undefined), undefined);
});

const STARTED = {
  ok: true,
  batch: 'wave-a',
  vms: 3,
  waves: 2,
  attached: false,
  runId: 'run-1',
  inventoryKey: 'vmconvoy/wave-a/inventory.jsonl',
  dryRun: false,
  awsApiBudget: null,
  conversionLimit: 5,
  warnings: [] as string[],
  uiLink: 'http://ui:8233/namespaces/default/workflows/wave-a',
};

test('start: what started and where to see it; a refused inventory on stderr; JSON on one line when --wait follows', async () => {
  const call = { args: ['inv.csv'], opts: { batch: 'wave-a' } };
  assert.equal(
    (await printed('start', STARTED, call)).stdout,
    [
      '✔ started batch wave-a (3 VMs in 2 waves)',
      'Temporal UI: http://ui:8233/namespaces/default/workflows/wave-a',
      'Conversions at once in this account and region: 5, shared by every batch there (set it with --max-conversions or `vmconvoy set-limits`)',
      'follow it with: vmconvoy status wave-a --watch',
      '',
    ].join('\n')
  );
  const attached = {
    ...STARTED,
    attached: true,
    vms: 1,
    waves: 1,
    dryRun: true,
    conversionLimit: null,
    awsApiBudget: 10,
    warnings: ['no worker polls task queue "q-aws-api": every EC2 call will wait until one does.'],
  };
  const waitCall = { args: ['inv.csv'], opts: { batch: 'wave-a', maxConversions: 3, wait: true } };
  assert.equal(
    (await printed('start', attached, waitCall)).stdout,
    [
      '✔ attached to running batch wave-a (1 VMs in 1 wave, dry run)',
      'Temporal UI: http://ui:8233/namespaces/default/workflows/wave-a',
      'Conversions at once in this account and region: unknown (its quota workflow did not answer: is a worker running?), shared by every batch there',
      'AWS API budget: 10 requests/s per AWS account and Region (change it live with `vmconvoy set-limits wave-a --max-api-rate N`)',
      'warning: no worker polls task queue "q-aws-api": every EC2 call will wait until one does.',
      '',
    ].join('\n')
  );
  assert.deepEqual(spec('start').follow?.(STARTED, waitCall), { batch: 'wave-a', intervalMs: 1000 });
  assert.equal(spec('start').follow?.(STARTED, call), undefined);

  assert.equal((await printed('start', STARTED, call, { json: true })).stdout, `${JSON.stringify(STARTED, null, 2)}\n`);
  const oneLine = await printed('start', STARTED, waitCall, { json: true, print: { oneLine: true } });
  assert.equal(oneLine.stdout, `${JSON.stringify(STARTED)}\n`);
  assert.deepEqual(Object.keys(JSON.parse(oneLine.stdout) as object).at(-1), 'uiLink');

  const refused = { ok: false, batch: 'wave-a', errors: [{ line: 2, column: 'image', message: 'no such file' }] };
  const text = await printed('start', refused, call, { color: true, errColor: false });
  assert.equal(text.stdout, '');
  assert.equal(
    text.stderr,
    'inv.csv:2 [image]: no such file\n✖ 1 problem in inv.csv; nothing was started\n',
    'no colours on a stderr without them'
  );
  const json = await printed('start', refused, call, { json: true });
  assert.deepEqual([json.stdout, json.stderr], [`${JSON.stringify(refused, null, 2)}\n`, '']);
  assert.equal(spec('start').exit?.(refused, call, undefined)?.code, 1);
  const failed = spec('start').exit?.(STARTED, waitCall, FAILED_BATCH);
  assert.equal(failed?.code, 2);
  assert.match(
    failed?.message ?? '',
    /^batch wave-a ended with failed VMs: `vmconvoy report wave-a --format md` lists the errors; .*`vmconvoy retry wave-a`$/
  );
  assert.equal(
    spec('start').exit?.(STARTED, waitCall, { ...FAILED_BATCH, state: 'completed', vms: [FAILED_BATCH.vms[1]!] }),
    undefined
  );
});

test('status: the table, or the status --json contract; exit 2 for a batch that ended with failed VMs', async () => {
  const text = (await printed('status', FAILED_BATCH)).stdout;
  assert.equal(text, `${renderStatus(FAILED_BATCH)}\n`);
  assert.match(
    text,
    /^batch b1: failed, 2 VMs\n0 pending, 0 uploading, 0 converting, 0 validating, 1 completed, 1 failed, 0 cancelled\n/
  );
  assert.match(text, /db-01 .*Failed .*Unsupported kernel version 2\.6\.18/);
  assert.ok(!text.includes('\x1b['), 'no colours unless the terminal has them');
  assert.ok((await printed('status', FAILED_BATCH, undefined, { color: true })).stdout.includes('\x1b[31mFailed'));
  assert.equal(
    (await printed('status', EMPTY_BATCH)).stdout,
    'batch b1: running, 3 VMs\n3 pending, 0 uploading, 0 converting, 0 validating, 0 completed, 0 failed, 0 cancelled\n'
  );

  const json = (await printed('status', FAILED_BATCH, undefined, { json: true })).stdout;
  assert.equal(json, `${JSON.stringify(statusJson(FAILED_BATCH), null, 2)}\n`);
  assert.deepEqual(Object.keys(JSON.parse(json) as object), ['batch', 'state', 'counts', 'vms']);
  assert.equal(
    (await printed('status', EMPTY_BATCH, undefined, { json: true })).stdout,
    '{\n  "batch": "b1",\n  "state": "running",\n  "counts": {\n    "pending": 3,\n    "uploading": 0,\n    "converting": 0,\n    "validating": 0,\n    "completed": 0,\n    "failed": 0,\n    "cancelled": 0\n  },\n  "vms": []\n}\n'
  );

  const status = spec('status');
  const call = { args: ['b1'], opts: { interval: 1 } };
  assert.equal(status.exit?.(FAILED_BATCH, call, undefined)?.code, 2);
  assert.equal(status.exit?.(EMPTY_BATCH, call, undefined), undefined);
  const watch = { args: ['b1'], opts: { watch: true, interval: 3 } };
  assert.ok(!Object.hasOwn(status, 'follow'), 'status --watch follows the batch itself (client/output/watch.ts)');
  assert.equal(status.exit?.(undefined, watch, FAILED_BATCH)?.code, 2, 'a watched batch that ended with failures');
});

test('a followed batch: one JSON line per change, plain change lines then the table, or a redrawn frame', () => {
  const running: BatchView = {
    batch: 'b1',
    state: 'running',
    total: 2,
    vms: [vm('db-01', 'Uploading'), vm('web-01', 'Uploading')],
  };
  const json = capture();
  const live = new Printer(json.io, true).live(BATCH_LIVE);
  for (const view of [running, running, FAILED_BATCH]) live.show(view);
  live.end(FAILED_BATCH);
  assert.equal(json.stdout(), `${JSON.stringify(statusJson(running))}\n${JSON.stringify(statusJson(FAILED_BATCH))}\n`);

  const plain = capture();
  const lines = new Printer(plain.io, false).live(BATCH_LIVE);
  lines.show(running);
  lines.show(FAILED_BATCH);
  lines.end(FAILED_BATCH);
  const out = plain.stdout().split('\n');
  assert.match(out[0]!, /^\d\d:\d\d:\d\d db-01 Uploading$/);
  assert.ok(out.some((l) => /^\d\d:\d\d:\d\d db-01 Failed ConversionFailed: Unsupported kernel/.test(l)));
  assert.ok(out.some((l) => /^\d\d:\d\d:\d\d web-01 Completed i-0abc$/.test(l)));
  assert.ok(plain.stdout().endsWith(`${renderStatus(FAILED_BATCH)}\n`), 'the final table after the lines');

  const tty = capture({ tty: true });
  const frames = new Printer(tty.io, false).live(BATCH_LIVE);
  frames.show(running);
  frames.end(running);
  assert.ok(tty.stdout().startsWith('\x1b[H\x1b[J'), 'redraws from the top');
  assert.match(tty.stdout(), /░{20} {3}0%/, 'progress bars on a terminal');
});

test('report: CSV, Markdown or JSON, to stdout or a file, empty included', async () => {
  const rows = reportRows(FAILED_BATCH.vms);
  const csv = (await printed('report', rows, { args: ['b1'], opts: { format: 'csv' } })).stdout;
  assert.equal(csv, `${renderReport(rows, 'csv')}\n`);
  assert.match(
    csv.split('\n')[1]!,
    /^db-01,Failed,,,,0,2026-01-01T00:00:00.000Z,,,ConversionFailed,Unsupported kernel version 2\.6\.18,,,,,$/
  );
  assert.match(
    (await printed('report', rows, { args: ['b1'], opts: { format: 'md' } })).stdout,
    /^\| name \| status \|/
  );
  const viaJson = await printed('report', rows, { args: ['b1'], opts: { format: 'csv', json: true } }, { json: true });
  const viaFormat = await printed('report', rows, { args: ['b1'], opts: { format: 'json' } });
  assert.equal(viaJson.stdout, viaFormat.stdout, '--json is --format json');
  assert.equal(viaJson.stdout, `${JSON.stringify(rows, null, 2)}\n`);

  const none = await printed('report', [], { args: ['b1'], opts: { format: 'csv' } });
  assert.equal(
    none.stdout,
    'name,status,instance_id,volume_id,conversion_task_id,bytes_uploaded,started_at,finished_at,duration_s,error_type,error_message,inspection,guest,inspection_reasons,aws_account_id,aws_region\n'
  );
  assert.equal(
    (await printed('report', [], { args: ['b1'], opts: { format: 'json' } }, { json: true })).stdout,
    '[]\n'
  );

  const file = path.join(dir.dir, 'report.md');
  const saved = await printed('report', rows, { args: ['b1'], opts: { format: 'md', out: file } }, { print: { file } });
  assert.equal(saved.stdout, '');
  assert.equal(saved.stderr, `2 VMs written to ${file}\n`);
  assert.equal(await readFile(file, 'utf8'), `${renderReport(rows, 'md')}\n`);
});

test('pause, resume, cancel, retry, set-limits and setup: what happened as text, the result as JSON', async () => {
  const cases: Array<[string, unknown, string, Call<object>?]> = [
    [
      'pause',
      { batch: 'b1', paused: true, reason: 'change freeze' },
      'batch b1 paused: no new VMs start, running ones go on; `vmconvoy resume b1` continues',
    ],
    ['resume', { batch: 'b1', paused: false }, 'batch b1 resumed'],
    [
      'cancel',
      { batch: 'b1', cancelRequested: true },
      'batch b1: cancellation requested; its running VMs are cancelled and cleaned up',
    ],
    [
      'cancel',
      { batch: 'b1', vm: 'web-01', cancelRequested: true },
      'VM web-01 of batch b1: cancellation requested; `vmconvoy retry b1` runs it again',
    ],
    ['retry', { batch: 'b1', mode: 'requeued', requeued: 1 }, 'batch b1: 1 VM re-queued'],
    ['retry', { batch: 'b1', mode: 'requeued', requeued: 0 }, 'batch b1: 0 VMs re-queued'],
    [
      'retry',
      { batch: 'b1', mode: 'restarted' },
      'batch b1 started again: failed and cancelled VMs run again, completed ones are kept',
    ],
    [
      'set-limits',
      { batch: 'b1', limits: { maxUploads: 8, maxConversions: 5 } },
      'batch b1 limits: 8 uploads, 5 conversions',
    ],
    [
      'set-limits',
      {
        batch: 'b1',
        limits: { maxUploads: 2, maxConversions: 1, maxInFlight: 4 },
        awsApiBudget: { taskQueue: 'q-aws-api', requestsPerSecond: 50 },
      },
      'batch b1 limits: 2 uploads, 1 conversions, 4 VMs in flight\nAWS API budget on task queue q-aws-api: 50 requests/s per AWS account and Region, for every batch on it',
    ],
    [
      'set-limits',
      {
        batch: 'b1',
        limits: { maxUploads: 2, maxConversions: 1 },
        awsApiBudget: { taskQueue: 'q-aws-api', requestsPerSecond: null },
      },
      'batch b1 limits: 2 uploads, 1 conversions\nAWS API budget on task queue q-aws-api: none',
    ],
    [
      'setup',
      {
        namespace: 'ns',
        added: ['MigrationBatch', 'MigrationVm'],
        alreadyPresent: ['MigrationPhase'],
        retentionDays: 45,
      },
      'namespace ns: search attributes added MigrationBatch, MigrationVm; retention 45 days',
    ],
    [
      'setup',
      { namespace: 'ns', added: [], alreadyPresent: ['MigrationBatch'], retentionDays: 30 },
      'namespace ns: search attributes already present; retention 30 days',
    ],
  ];
  for (const [name, value, text] of cases) {
    assert.deepEqual(await printed(name, value), { stdout: `${text}\n`, stderr: '' }, name);
    assert.deepEqual(
      await printed(name, value, undefined, { json: true }),
      { stdout: `${JSON.stringify(value, null, 2)}\n`, stderr: '' },
      `${name} --json`
    );
  }
  // Byte for byte, as scripts read it.
  const pause = await printed('pause', { batch: 'b1', paused: true, reason: 'x' }, undefined, { json: true });
  assert.equal(pause.stdout, '{\n  "batch": "b1",\n  "paused": true,\n  "reason": "x"\n}\n');
  const retry = await printed('retry', { batch: 'b1', mode: 'restarted' }, undefined, { json: true });
  assert.equal(retry.stdout, '{\n  "batch": "b1",\n  "mode": "restarted"\n}\n');
});

test('a command run end to end through the CLI prints its --json result and exits by its rule', async () => {
  const csv = path.join(dir.dir, 'bad.csv');
  await writeFile(csv, 'name,image,architecture,instance_type\nvm 1,x.raw,x86_64,t2.micro\n');
  const c = capture();
  const code = await main(['validate', csv, '--json'], { VMCONVOY_ENV_FILE: path.join(dir.dir, 'none.json') }, c.io);
  assert.equal(code, 1);
  const result = JSON.parse(c.stdout()) as { ok: boolean; errors: Array<{ line: number; column: string }> };
  assert.equal(result.ok, false);
  assert.deepEqual(
    result.errors.map((e) => [e.line, e.column]),
    [
      [2, 'name'],
      [2, 'image'],
    ]
  );
  assert.match(c.stdout(), /^\{\n {2}"ok": false,\n {2}"errors": \[\n/, 'indented JSON');
});

test('every registered command has a summary and at least one example, shown by its --help', async () => {
  const names = COMMANDS.map((c) => c.name);
  assert.equal(new Set(names).size, names.length, 'no name twice');
  const top = capture();
  assert.equal(await main(['--help'], {}, top.io), 0);
  for (const command of COMMANDS) {
    assert.match(command.summary, /^[a-z].*[^.]$/, `${command.name}: a lower-case summary without a full stop`);
    assert.ok(command.examples.length > 0, `${command.name} has an example`);
    for (const example of command.examples) assert.match(example, /vmconvoy |^# /, `${command.name}: ${example}`);
    assert.match(top.stdout(), new RegExp(`\\n  ${command.name} `), `vmconvoy --help lists ${command.name}`);
    if (command.passThrough) continue; // its --help is its own parser's
    const help = capture();
    assert.equal(await main([command.name, '--help'], {}, help.io), 0, help.stderr());
    const flat = help.stdout().replace(/\s+/g, ' ');
    assert.ok(flat.includes(command.summary), `${command.name} --help shows its summary`);
    assert.match(help.stdout(), /\nExamples?:\n {2}\$ /);
    for (const example of command.examples)
      assert.ok(help.stdout().includes(`  $ ${example}\n`), `${command.name} --help: ${example}`);
  }
});

test('a pass-through command (sim) gets every word after its name in order, --help included', async () => {
  const sim = spec('sim');
  assert.equal(sim.passThrough, true);
  for (const words of [['--help'], ['--port', '0', '--help', '--state', 'x.json'], ['-h', '--config', 'c.json']]) {
    let got: string[] | undefined;
    const program = new Command('vmconvoy').exitOverride();
    addCommand(program, sim, (call) => {
      got = call.args;
      return Promise.resolve();
    });
    await program.parseAsync(['sim', ...words], { from: 'user' });
    assert.deepEqual(got, words);
  }
});

/** A name, tags and an AWS message as a hostile inventory or a hostile endpoint would write them. */
const HOSTILE_BATCH: BatchView = {
  batch: 'b1',
  state: 'failed',
  total: 2,
  vms: [
    vm('db\x1b[2J\x1b[H', 'Failed', {
      errorType: 'ClientError',
      error: 'AWS: \x1b]8;;http://evil\x07click\x1b]8;;\x07\n✔ every VM completed',
    }),
    vm('web\u202eexe.txt\u009b1m', 'Completed', { instanceId: 'i-0abc\x1b]0;pwned\x07' }),
  ],
};

/** Every ESC in `text` starts a colour sequence (SGR), the only one a view may emit. */
function onlyColours(text: string): boolean {
  // eslint-disable-next-line no-control-regex -- looking for raw ESC characters
  return [...text.matchAll(/\x1b/g)].every((m) => /^\x1b\[[0-9;]*m/.test(text.slice(m.index)));
}

test('hostile names, tags and AWS messages print as visible escapes in every text output (golden)', async () => {
  const status = (await printed('status', HOSTILE_BATCH)).stdout;
  // eslint-disable-next-line no-control-regex -- looking for raw control characters
  assert.doesNotMatch(status, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/, 'no control character but layout');
  assert.match(status, /│ db\\x1b\[2J\\x1b\[H +│ Failed +│/);
  assert.match(status, /│ AWS: \\x1b\]8;;http:\/\/evil\\x07click\\x1b\]8;;\\x07\\n✔ every VM completed │/);
  assert.match(status, /│ web\\u202eexe\.txt\\x9b1m │ Completed │ 100 │ i-0abc\\x1b\]0;pwned\\x07 │/);
  const coloured = (await printed('status', HOSTILE_BATCH, undefined, { color: true })).stdout;
  assert.ok(coloured.includes('\x1b[31mFailed\x1b[39m'), 'colours still work');
  assert.ok(onlyColours(coloured), 'and are the only sequences');

  // Watching without a terminal: the change lines, then the table.
  const plain = capture();
  const live = new Printer(plain.io, false).live(BATCH_LIVE);
  live.show(HOSTILE_BATCH);
  live.end(HOSTILE_BATCH);
  const lines = plain.stdout().split('\n');
  assert.deepEqual(
    lines.slice(0, 2).map((l) => l.slice(9)),
    [
      'db\\x1b[2J\\x1b[H Failed ClientError: AWS: \\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07\\n✔ every VM completed',
      'web\\u202eexe.txt\\x9b1m Completed i-0abc\\x1b]0;pwned\\x07',
    ]
  );
  assert.ok(!lines.some((l) => l.startsWith('✔')), 'the message forged no line of its own');
  // On a terminal: the printer's own home-and-clear, then a frame with colours only.
  const tty = capture({ tty: true, color: true });
  new Printer(tty.io, false).live(BATCH_LIVE).show(HOSTILE_BATCH);
  assert.ok(tty.stdout().startsWith('\x1b[H\x1b[J'));
  assert.ok(onlyColours(tty.stdout().slice('\x1b[H\x1b[J'.length)));
  assert.match(tty.stdout(), /db\\x1b\[2J\\x1b\[H/);
});

test('inventory problems with a hostile CSV header and file name print as text (golden)', async () => {
  const problems = {
    ok: false,
    errors: [
      { line: 1, column: 'os\x1b[8m', message: 'unknown column "os\x1b[8m"' },
      { line: 3, column: 'name', message: '"a\rb": use 1-64 characters' },
    ],
  };
  const call = { args: ['inv\x07\u202e.csv'], opts: {} };
  assert.equal(
    (await printed('validate', problems, call)).stdout,
    [
      'inv\\x07\\u202e.csv:1 [os\\x1b[8m]: unknown column "os\\x1b[8m"',
      'inv\\x07\\u202e.csv:3 [name]: "a\\rb": use 1-64 characters',
      '✖ 2 problems in inv\\x07\\u202e.csv; nothing was started',
      '',
    ].join('\n')
  );
  const refused = await printed('start', { ok: false, batch: 'b', errors: problems.errors }, call, { errColor: true });
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /^inv\\x07\\u202e\.csv:1 \[os\\x1b\[8m\]: unknown column "os\\x1b\[8m"\n/);
  assert.ok(onlyColours(refused.stderr));
  // --json is the exact value, with what JSON.stringify leaves raw (C1, bidi) escaped: it parses back the same.
  const json = (await printed('validate', problems, call, { json: true })).stdout;
  assert.deepEqual(JSON.parse(json), problems);
  // eslint-disable-next-line no-control-regex -- looking for raw control characters
  assert.doesNotMatch(json, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
  const status = (await printed('status', HOSTILE_BATCH, undefined, { json: true })).stdout;
  assert.match(status, /"name": "web\\u202eexe\.txt\\u009b1m"/);
  assert.deepEqual(JSON.parse(status), statusJson(HOSTILE_BATCH));
});

test('report through the printer: hostile cells are visible, CSV formulas and Markdown links neutralised', async () => {
  const rows = reportRows([
    vm('=HYPERLINK("http://evil","x")', 'Failed', { errorType: 'ClientError', error: '[x](http://evil)\x1b[2J' }),
    vm('<img src=x onerror=alert(1)>', 'Completed', { instanceId: 'i-1' }),
  ]);
  const csv = (await printed('report', rows, { args: ['b1'], opts: { format: 'csv' } })).stdout.split('\n');
  assert.equal(
    csv[1],
    `"'=HYPERLINK(""http://evil"",""x"")",Failed,,,,0,2026-01-01T00:00:00.000Z,,,ClientError,[x](http://evil)\\x1b[2J,,,,,`
  );
  const md = (await printed('report', rows, { args: ['b1'], opts: { format: 'md' } })).stdout.split('\n');
  assert.match(md[2]!, /^\| =HYPERLINK\\\("http\\:\/\/evil","x"\\\) \| Failed \|/);
  assert.match(md[2]!, /\| \\\[x\\\]\\\(http\\:\/\/evil\\\)\\\\x1b\\\[2J \| {2}\| {2}\| {2}\| {2}\| {2}\|$/);
  assert.match(md[3]!, /^\| &lt;img src=x onerror=alert\\\(1\\\)&gt; \| Completed \| i-1 \|/);
});

test('progress lines and remarks keep their colours and lose every other sequence', () => {
  const c = capture({ color: true });
  const printer = new Printer(c.io, false);
  printer.line(`${printer.paint.green('ready')}: worker \x1b]0;t\x07 up\r`);
  printer.note('the worker exited\x1b[2J');
  assert.equal(c.stdout(), '\x1b[32mready\x1b[39m: worker \\x1b]0;t\\x07 up\\r\n');
  assert.equal(c.stderr(), 'the worker exited\\x1b[2J\n');
});
