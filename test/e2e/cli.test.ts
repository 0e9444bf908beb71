/**
 * The `vmconvoy` binary as a user runs it, against a real Temporal server, S3 server and EC2 simulator, with
 * a worker started the way an operator starts one (`vmconvoy worker`, a child process): validate, a
 * 20-VM batch across two waves with `start --wait`, status --json, reports in every format, retry after
 * an injected failure, relaunch of the same batch, pause/resume/set-limits, cancelling one VM.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceProcess } from '../../dev/process';
import { fleetStatusQuery } from '../../workflows/messages';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';
import { spawnCliWorker, testbedEnv, eventually, runCli } from './run-cli';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let env: NodeJS.ProcessEnv;
const stamp = Date.now().toString(36);
const FAST = { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 };
const FAIL_MARKER = 'VMCONVOY_SIM_FAIL=ClientError: Unsupported kernel version 2.6.18';

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: FAST } }),
    tempDir('vmconvoy-e2e-'),
  ]);
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-cli', {
    VMCONVOY_TEMPORAL_UI: 'http://ui.test:8233',
  });
  const images = Promise.all([
    makeImage(dir.dir, 'web.vmdk', 'stream-vmdk', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'app.vhd', 'fixed-vhd', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'db.vhd', 'dynamic-vhd', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'cache.raw', 'raw', { virtualMiB: 8, randomMiB: 1 }),
    makeImage(dir.dir, 'legacy.raw', 'raw', { virtualMiB: 8, randomMiB: 1, marker: FAIL_MARKER }),
    makeImage(dir.dir, 'legacy-fixed.raw', 'raw', { virtualMiB: 8, randomMiB: 1 }),
  ]);
  // The worker as an operator runs it.
  worker = await spawnCliWorker(env, dir.dir);
  await images;
});

after(async () => {
  await worker?.stop();
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

interface StatusJson {
  batch: string;
  state: string;
  counts: Record<string, number>;
  vms: Array<{
    name: string;
    phase: string;
    percent: number;
    conversionTaskId: string | null;
    instanceId: string | null;
    error: string | null;
    inspection: { verdict: string } | null;
  }>;
}
async function status(batch: string): Promise<StatusJson> {
  const run = await vmconvoy('status', batch, '--json');
  assert.ok(run.code === 0 || run.code === 2, run.stderr);
  return JSON.parse(run.stdout) as StatusJson;
}

// The images are random bytes, not guests: each row skips the look inside the guest (RANDOM_IMAGE_ROW).
const HEADER = 'Name,Image,Format,Architecture,Instance_Type,Platform,Wave,Tags,Inspection';
const IMAGES: Array<[string, string]> = [
  ['web.vmdk', ''],
  ['app.vhd', 'VHD'],
  ['db.vhd', ''],
  ['cache.raw', 'RAW'],
];

test('validate reports every problem with its line and column and exits 1; a good inventory exits 0', async () => {
  const bad = path.join(dir.dir, 'bad.csv');
  await writeFile(bad, [HEADER + ',colour', 'web-01,web.vmdk,VMDK,x86_64,t2.medium,,1,,skip,red'].join('\n') + '\n');
  const unknown = await vmconvoy('validate', bad);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /bad\.csv:1 \[colour\]: unknown column "colour"/);

  await writeFile(
    bad,
    [
      HEADER,
      'web-01,web.vmdk,VMDK,x86_64,t2.medium,,1,,skip',
      'web 02,missing.vmdk,,arm64,t2.medium,,0,team,skip',
      'web-01,app.vhd,RAW,x86_64,,,1,,skip',
      'db-01,db.vhd,,x86_64,r3.large,Linux,2,skip',
    ].join('\n') + '\n'
  );
  const result = await vmconvoy('validate', bad);
  assert.equal(result.code, 1);
  for (const expected of [
    /bad\.csv:3 \[name\]: "web 02": use 1-64 characters/,
    /bad\.csv:3 \[image\]: .*missing\.vmdk/,
    /bad\.csv:3 \[architecture\]: "arm64" is not supported/,
    /bad\.csv:3 \[wave\]: "0" must be a whole number of at least 1/,
    /bad\.csv:3 \[tags\]: "team" is not key=value/,
    /bad\.csv:4 \[name\]: duplicate name "web-01" \(also on line 2\)/,
    /bad\.csv:4 \[image\]: .*declared as RAW/,
    /bad\.csv:4 \[instance_type\]: instance_type is required/,
    /bad\.csv:5: 8 cells, but the header has 9 columns/,
    /✖ 9 problems in .*bad\.csv; nothing was started/,
  ]) {
    assert.match(result.stdout, expected);
  }
  const json = JSON.parse((await vmconvoy('validate', bad, '--json')).stdout) as {
    ok: boolean;
    errors: Array<{ line: number; column?: string }>;
  };
  assert.equal(json.ok, false);
  assert.equal(json.errors.length, 9);
  assert.deepEqual(json.errors[0], {
    line: 3,
    column: 'name',
    message: '"web 02": use 1-64 characters of A-Z a-z 0-9 . _ -',
  });

  const good = path.join(dir.dir, 'good.csv');
  await writeFile(
    good,
    [
      HEADER,
      'web-01,web.vmdk,,x86_64,t2.medium,,2,team=web,skip',
      'db-01,db.vhd,VHD,x86_64,r3.large,Windows,1,,skip',
    ].join('\n') + '\n'
  );
  const ok = await vmconvoy('validate', good);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /good\.csv: 2 VMs in 2 waves, every row and image valid/);
});

test('20 VMs in two waves: start --wait, status --json, reports, retry after an injected failure, relaunch', async () => {
  const csv = path.join(dir.dir, 'fleet.csv');
  const rows = Array.from({ length: 20 }, (_, i) => {
    const wave = i < 10 ? 1 : 2;
    const name = i === 3 ? 'legacy-01' : `vm-${String(i + 1).padStart(2, '0')}`;
    const [image, format] = i === 3 ? ['legacy.raw', 'RAW'] : IMAGES[i % IMAGES.length]!;
    return `${name},${image},${format},x86_64,t2.medium,${i % 5 === 1 ? 'Windows' : ''},${wave},team=t${i % 3};wave=${wave},skip`;
  });
  // Wave 2 rows first in the file: the batch still runs wave 1 first.
  await writeFile(csv, [HEADER, ...rows.slice(10), ...rows.slice(0, 10)].join('\n') + '\n');
  const batch = `e2e-${stamp}`;

  const started = Date.now();
  const run = await vmconvoy('start', csv, '--batch', batch, '--max-uploads', '4', '--max-conversions', '5', '--wait');
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`[e2e] 20 VMs, 2 waves, start --wait: ${seconds} s`);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`started batch ${batch} \\(20 VMs in 2 waves\\)`));
  assert.doesNotMatch(run.stdout, /no worker polls/, 'every queue of this batch is served by the worker of this file');
  assert.match(run.stdout, new RegExp(`Temporal UI: http://ui\\.test:8233/namespaces/default/workflows/${batch}`));
  assert.match(
    run.stdout,
    /legacy-01 Failed ConversionFailed: .*Unsupported kernel version 2\.6\.18/,
    'plain progress lines without a terminal'
  );
  assert.match(run.stderr, new RegExp(`batch ${batch} ended with failed VMs: .*vmconvoy retry ${batch}`));

  // status --json: exactly the contract.
  const s = await status(batch);
  assert.deepEqual(Object.keys(s), ['batch', 'state', 'counts', 'vms']);
  assert.deepEqual(Object.keys(s.counts), [
    'pending',
    'uploading',
    'converting',
    'validating',
    'completed',
    'failed',
    'cancelled',
  ]);
  assert.deepEqual(s.counts, {
    pending: 0,
    uploading: 0,
    converting: 0,
    validating: 0,
    completed: 19,
    failed: 1,
    cancelled: 0,
  });
  assert.deepEqual([s.batch, s.state, s.vms.length], [batch, 'failed', 20]);
  for (const vm of s.vms) {
    assert.deepEqual(Object.keys(vm), [
      'name',
      'phase',
      'percent',
      'conversionTaskId',
      'instanceId',
      'error',
      'inspection',
      // The account and Region it imported into (issue 20).
      'aws',
    ]);
    // The rows said inspection=skip: recorded as the operator's choice, whatever the VM's outcome.
    assert.equal(vm.inspection?.verdict, 'skipped', vm.name);
  }
  const legacy = s.vms.find((v) => v.name === 'legacy-01')!;
  assert.equal(legacy.phase, 'Failed');
  assert.match(legacy.error ?? '', /Unsupported kernel version 2\.6\.18/);
  for (const vm of s.vms.filter((v) => v.name !== 'legacy-01')) {
    assert.equal(vm.phase, 'Completed');
    assert.equal(vm.percent, 100);
    assert.match(vm.instanceId ?? '', /^i-/);
    assert.match(vm.conversionTaskId ?? '', /^import-i-/);
  }
  assert.equal((await vmconvoy('status', batch)).code, 2, 'status of a batch that ended with failures exits 2');

  // Reports: JSON (and the wave order), CSV, Markdown to a file.
  const report = JSON.parse((await vmconvoy('report', batch, '--format', 'json')).stdout) as Array<
    Record<string, string | number | null>
  >;
  assert.equal(report.length, 20);
  const wave1 = report.filter((r) => Number(String(r.name).slice(3)) <= 10 || r.name === 'legacy-01');
  const wave2 = report.filter((r) => !wave1.includes(r));
  assert.equal(wave2.length, 10);
  const wave1End = Math.max(...wave1.map((r) => Date.parse(r.finished_at as string)));
  const wave2Start = Math.min(...wave2.map((r) => Date.parse(r.started_at as string)));
  // A VM tells its fleet it is done just before its workflow closes: allow that instant.
  assert.ok(wave2Start >= wave1End - 1500, `wave 2 started ${wave1End - wave2Start} ms before wave 1 finished`);
  const legacyRow = report.find((r) => r.name === 'legacy-01')!;
  assert.deepEqual([legacyRow.status, legacyRow.error_type], ['Failed', 'ConversionFailed']);
  const ok = report.find((r) => r.name === 'vm-01')!;
  assert.equal(ok.status, 'Completed');
  assert.match(String(ok.volume_id), /^vol-/);
  assert.ok(Number(ok.bytes_uploaded) > 0 && Number(ok.duration_s) >= 0);

  const csvReport = (await vmconvoy('report', batch, '--format', 'csv')).stdout.trim().split('\n');
  assert.equal(
    csvReport[0],
    'name,status,instance_id,volume_id,conversion_task_id,bytes_uploaded,started_at,finished_at,duration_s,error_type,error_message,inspection,guest,inspection_reasons,aws_account_id,aws_region'
  );
  assert.equal(csvReport.length, 21);
  const mdFile = path.join(dir.dir, 'report.md');
  const md = await vmconvoy('report', batch, '--format', 'md', '--out', mdFile);
  assert.equal(md.code, 0, md.stderr);
  const mdLines = (await readFile(mdFile, 'utf8')).trim().split('\n');
  assert.equal(mdLines.length, 22);
  assert.match(mdLines[0]!, /^\| name \| status \| instance_id \|/);
  assert.match(
    mdLines.find((l) => l.startsWith('| legacy-01 '))!,
    /\| Failed \|.*\| ConversionFailed \| .*Unsupported kernel/
  );

  // The operator fixes the image and retries the ended batch: only the failed VM runs again.
  const tasksBefore = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/`));
  assert.equal(tasksBefore.length, 20, 'one conversion task per VM');
  await copyFile(path.join(dir.dir, 'legacy-fixed.raw'), path.join(dir.dir, 'legacy.raw'));
  const retry = await vmconvoy('retry', batch, '--json');
  assert.equal(retry.code, 0, retry.stderr);
  assert.deepEqual(JSON.parse(retry.stdout), { batch, mode: 'restarted' });
  const watched = await vmconvoy('status', batch, '--watch');
  assert.equal(watched.code, 0, watched.stdout + watched.stderr);
  assert.match(watched.stdout, /legacy-01 Completed i-/);
  const afterRetry = await status(batch);
  assert.deepEqual([afterRetry.state, afterRetry.counts.completed, afterRetry.counts.failed], ['completed', 20, 0]);

  // Starting the same inventory again converts nothing twice.
  const relaunch = await vmconvoy('start', csv, '--batch', batch, '--wait');
  assert.equal(relaunch.code, 0, relaunch.stdout + relaunch.stderr);
  const tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/`));
  const perVm = (vm: string) => tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${vm}/`));
  for (const vm of s.vms.map((v) => v.name).filter((n) => n !== 'legacy-01'))
    assert.equal(perVm(vm).length, 1, `one conversion task for ${vm}`);
  assert.deepEqual(
    perVm('legacy-01')
      .map((t) => t.state)
      .sort(),
    ['cancelled', 'completed'],
    'the failed conversion and the retried one'
  );
  assert.equal(tasks.length, 21);
  assert.deepEqual((await status(batch)).counts, {
    pending: 0,
    uploading: 0,
    converting: 0,
    validating: 0,
    completed: 20,
    failed: 0,
    cancelled: 0,
  });
});

test('pause holds new VMs, start attaches to the running batch, set-limits, cancel --vm, resume, retry the cancelled VM', async () => {
  const csv = path.join(dir.dir, 'pause.csv');
  await writeFile(
    csv,
    [HEADER, ...['p1', 'p2', 'p3', 'p4'].map((n) => `${n},cache.raw,RAW,x86_64,t2.small,,1,,skip`)].join('\n') + '\n'
  );
  const batch = `e2e-pause-${stamp}`;
  // Slow conversions, so p1 is still converting when it is cancelled: 8 MiB at 16 KiB/s is over 8 minutes,
  // room for the dozen CLI runs before the cancel even on a loaded machine (at 128 KiB/s p1 once completed
  // first, with the load average at 25). Conversions go fast again before the resume.
  await sim.configure({ speed: { conversionBytesPerSecond: 16 * 1024 } });
  try {
    const start = await vmconvoy(
      'start',
      csv,
      '--batch',
      batch,
      '--max-uploads',
      '1',
      '--max-conversions',
      '1',
      '--json'
    );
    assert.equal(start.code, 0, start.stderr);
    const started = JSON.parse(start.stdout) as { attached: boolean; conversionLimit: number };
    assert.equal(started.attached, false);
    // --max-conversions sets the account+region's quota, even when an earlier batch started it with another.
    assert.equal(started.conversionLimit, 1);
    // p1 is under way before the pause; the others wait.
    await eventually('p1 to start', () =>
      temporal.client.workflow
        .getHandle(`${batch}/p1`)
        .describe()
        .then(() => true)
        .catch(() => undefined)
    );
    const pause = await vmconvoy('pause', batch, '--reason', 'change freeze');
    assert.equal(pause.code, 0, pause.stderr);
    const fleet = temporal.client.workflow.getHandle(batch);
    assert.match(
      (await fleet.describe()).taskQueue,
      /-control$/,
      'the fleet runs on the control queue, its VMs on the main one'
    );
    assert.doesNotMatch((await temporal.client.workflow.getHandle(`${batch}/p1`).describe()).taskQueue, /-control$/);
    const startedWhenPaused = (await fleet.query(fleetStatusQuery)).started;
    const paused = await status(batch);
    assert.equal(paused.state, 'paused');
    assert.ok(paused.counts.pending! >= 1, 'VMs wait while paused');
    assert.match((await vmconvoy('status', batch)).stdout, /paused \(change freeze\)/);

    const attach = await vmconvoy('start', csv, '--batch', batch, '--json');
    assert.equal(attach.code, 0, attach.stderr);
    const attached = JSON.parse(attach.stdout) as { attached: boolean; conversionLimit: number };
    assert.equal(attached.attached, true, 'a running batch is attached to, not started twice');
    assert.equal(attached.conversionLimit, 1, 'a start without --max-conversions keeps the quota as it is');

    const limits = await vmconvoy('set-limits', batch, '--max-uploads', '2', '--json');
    assert.equal(limits.code, 0, limits.stderr);
    assert.equal((JSON.parse(limits.stdout) as { limits: { maxUploads: number } }).limits.maxUploads, 2);
    assert.equal((await vmconvoy('set-limits', batch)).code, 1, 'set-limits needs a limit');
    // The AWS API budget lives on the server, on the batch's AWS API task queue.
    const budget = await vmconvoy('set-limits', batch, '--max-api-rate', '50', '--json');
    assert.equal(budget.code, 0, budget.stderr);
    const set = JSON.parse(budget.stdout) as { awsApiBudget: { taskQueue: string; requestsPerSecond: number | null } };
    assert.equal(set.awsApiBudget.requestsPerSecond, 50);
    assert.match(set.awsApiBudget.taskQueue, /-aws-api$/);
    assert.equal((await vmconvoy('set-limits', batch, '--max-api-rate', '0')).code, 1, 'a budget must be > 0');
    const cleared = await vmconvoy('set-limits', batch, '--max-api-rate', 'default', '--json');
    assert.equal((JSON.parse(cleared.stdout) as typeof set).awsApiBudget.requestsPerSecond, null, cleared.stderr);

    const cancel = await vmconvoy('cancel', batch, '--vm', 'p1');
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /VM p1 of batch .*: cancellation requested/);
    assert.equal(
      (await fleet.query(fleetStatusQuery)).started,
      startedWhenPaused,
      'no VM started while paused, even with more upload room'
    );

    await sim.configure({ speed: FAST });
    assert.equal((await vmconvoy('resume', batch)).code, 0);
    const done = await vmconvoy('status', batch, '--watch', '--json');
    assert.equal(done.code, 0, done.stderr);
    const snapshots = done.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StatusJson);
    assert.ok(snapshots.length >= 1);
    const final = snapshots.at(-1)!;
    assert.equal(final.state, 'completed');
    assert.deepEqual(
      final.vms.map((v) => [v.name, v.phase]),
      [
        ['p1', 'Cancelled'],
        ['p2', 'Completed'],
        ['p3', 'Completed'],
        ['p4', 'Completed'],
      ]
    );
    assert.deepEqual(final.counts, {
      pending: 0,
      uploading: 0,
      converting: 0,
      validating: 0,
      completed: 3,
      failed: 0,
      cancelled: 1,
    });
    const p1Tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/p1/`));
    assert.ok(
      p1Tasks.every((t) => t.state !== 'active'),
      `no active task left for p1: ${JSON.stringify(p1Tasks)}`
    );
    const cancelledRow = (
      JSON.parse((await vmconvoy('report', batch, '--json')).stdout) as Array<Record<string, unknown>>
    ).find((r) => r.name === 'p1')!;
    assert.equal(cancelledRow.status, 'Cancelled');

    // Retry brings the cancelled VM back.
    assert.equal((await vmconvoy('retry', batch)).code, 0);
    assert.equal((await vmconvoy('status', batch, '--watch')).code, 0);
    assert.deepEqual((await status(batch)).counts, {
      pending: 0,
      uploading: 0,
      converting: 0,
      validating: 0,
      completed: 4,
      failed: 0,
      cancelled: 0,
    });
  } finally {
    await sim.configure({ speed: FAST });
  }
});

test('commands on a batch that does not exist say how to start it (exit 1)', async () => {
  for (const args of [
    ['status', 'nope'],
    ['pause', 'nope'],
    ['retry', 'nope'],
    ['report', 'nope'],
  ]) {
    const run = await vmconvoy(...args);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /no batch "nope": start it with `vmconvoy start <inventory\.csv> --batch nope`/);
  }
  const cancel = await vmconvoy('cancel', 'nope', '--vm', 'x');
  assert.equal(cancel.code, 1);
  assert.match(cancel.stderr, /batch "nope" has no VM "x"/);
});

test('start says which of the batch task queues no worker polls (VMs would wait there silently)', async () => {
  const csv = path.join(dir.dir, 'unserved.csv');
  await writeFile(csv, [HEADER, 'web-01,web.vmdk,,x86_64,t2.medium,,1,,skip'].join('\n') + '\n');
  const queue = uniqueTaskQueue('nobody-serves');
  const batch = `e2e-unserved-${stamp}`;
  const run = await runCli(['start', csv, '--batch', batch, '--json'], { ...env, VMCONVOY_TASK_QUEUE: queue }, dir.dir);
  try {
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.stdout) as { warnings: string[] };
    const named = out.warnings.map((w) => /task queue "([^"]+)"/.exec(w)?.[1]).sort();
    assert.deepEqual(named, [queue, `${queue}-aws-api`, `${queue}-control`].sort());
    assert.match(out.warnings[0]!, /Start `vmconvoy worker` with the same VMCONVOY_TASK_QUEUE/);
  } finally {
    await runCli(['cancel', batch], { ...env, VMCONVOY_TASK_QUEUE: queue }, dir.dir);
  }
});
