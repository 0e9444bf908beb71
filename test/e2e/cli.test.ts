/**
 * The `vmconvoy` binary as a user runs it, against the real Temporal server, S3 server and EC2 simulator,
 * with a real worker: validate, start --wait across waves, status --json, report, retry after a failure,
 * relaunch, pause/resume, cancel one VM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { REPO_ROOT } from '../../dev/services';
import { createWorkers } from '../../worker/create-worker';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { localAwsConfig, startS3, startSim, startTemporal, tempDir, uniqueTaskQueue, workflowBundle } from '../helpers/testbed';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: Worker;
let workerRun: Promise<void>;
let env: NodeJS.ProcessEnv;
const stamp = Date.now().toString(36);

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 } } }),
    tempDir('vmconvoy-e2e-'),
  ]);
  const taskQueue = uniqueTaskQueue('e2e-cli');
  [worker] = (await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws: localAwsConfig(s3, sim),
    workflowBundle: await workflowBundle(),
  })) as [Worker];
  workerRun = worker.run();
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: temporal.address,
    VMCONVOY_TASK_QUEUE: taskQueue,
    AWS_REGION: s3.region,
    AWS_ENDPOINT_URL_EC2: sim.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    VMCONVOY_BUCKET: s3.bucket,
    VMCONVOY_ENV_FILE: path.join(dir.dir, 'no-env.json'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    NO_COLOR: '1',
  };
  // Images: tiny, every supported format, one carrying the simulator's failure marker.
  await makeImage(dir.dir, 'web.vmdk', 'stream-vmdk', { virtualMiB: 8, randomMiB: 1 });
  await makeImage(dir.dir, 'app.vhd', 'fixed-vhd', { virtualMiB: 8, randomMiB: 1 });
  await makeImage(dir.dir, 'db.vhd', 'dynamic-vhd', { virtualMiB: 8, randomMiB: 1 });
  await makeImage(dir.dir, 'cache.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
  await makeImage(dir.dir, 'legacy.raw', 'raw', { virtualMiB: 8, randomMiB: 1, marker: 'VMCONVOY_SIM_FAIL=ClientError: Unsupported kernel version 2.6.18' });
  await makeImage(dir.dir, 'legacy-fixed.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
});

after(async () => {
  worker?.shutdown();
  await workerRun;
  await Promise.all([sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

function vmconvoy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), ...args], { env, cwd: dir.dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const HEADER = 'name,image,format,architecture,instance_type,platform,wave,tags';

test('validate reports every problem with its line and column, and exits 1', async () => {
  const csv = path.join(dir.dir, 'bad.csv');
  await writeFile(
    csv,
    [HEADER + ',colour', 'web-01,web.vmdk,VMDK,x86_64,t2.medium,,1,,red'].join('\n') + '\n'
  );
  const unknown = await vmconvoy('validate', csv);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /bad\.csv:1 \[colour\]: unknown column "colour"/);

  await writeFile(
    csv,
    [
      HEADER,
      'web-01,web.vmdk,VMDK,x86_64,t2.medium,,1,',
      'web 02,missing.vmdk,,arm64,t2.medium,,0,team',
      'web-01,app.vhd,RAW,x86_64,,,1,',
    ].join('\n') + '\n'
  );
  const result = await vmconvoy('validate', csv);
  assert.equal(result.code, 1);
  for (const expected of [
    /bad\.csv:3 \[name\]: "web 02"/,
    /bad\.csv:3 \[wave\]: "0" must be a whole number of at least 1/,
    /bad\.csv:3 \[tags\]: "team" is not key=value/,
    /bad\.csv:4 \[instance_type\]: instance_type is required/,
  ]) {
    assert.match(result.stdout, expected);
  }
  const json = JSON.parse((await vmconvoy('validate', csv, '--json')).stdout) as { ok: boolean; errors: unknown[] };
  assert.equal(json.ok, false);
  assert.ok(json.errors.length >= 4);
});

test('start --wait runs two waves, fails one VM with an actionable message, and retry after the fix completes the batch', async () => {
  const csv = path.join(dir.dir, 'fleet.csv');
  await writeFile(
    csv,
    [
      HEADER,
      'web-01,web.vmdk,,x86_64,t2.medium,,1,team=web',
      'app-01,app.vhd,VHD,x86_64,m5.large,Windows,1,team=app',
      'legacy-01,legacy.raw,RAW,x86_64,t2.micro,,1,',
      'db-01,db.vhd,,x86_64,r3.large,,2,team=db',
      'cache-01,cache.raw,RAW,x86_64,c3.large,,2,',
    ].join('\n') + '\n'
  );
  const batch = `e2e-${stamp}`;
  const run = await vmconvoy('start', csv, '--batch', batch, '--max-uploads', '2', '--max-conversions', '2', '--wait');
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stdout, /started batch .* \(5 VMs\)/);
  assert.match(run.stdout, /Temporal UI: http:\/\/localhost:8233\/namespaces\/default\/workflows\//);

  const status = JSON.parse((await vmconvoy('status', batch, '--json')).stdout) as {
    batch: string;
    state: string;
    counts: Record<string, number>;
    vms: Array<{ name: string; phase: string; percent: number; conversionTaskId: string | null; instanceId: string | null; error: string | null }>;
  };
  assert.deepEqual(Object.keys(status), ['batch', 'state', 'counts', 'vms']);
  assert.deepEqual(Object.keys(status.counts), ['pending', 'uploading', 'converting', 'validating', 'completed', 'failed', 'cancelled']);
  assert.deepEqual([status.state, status.counts.completed, status.counts.failed, status.counts.pending], ['failed', 4, 1, 0]);
  const legacy = status.vms.find((v) => v.name === 'legacy-01')!;
  assert.equal(legacy.phase, 'Failed');
  assert.match(legacy.error ?? '', /Unsupported kernel version 2\.6\.18/);
  assert.deepEqual(Object.keys(legacy), ['name', 'phase', 'percent', 'conversionTaskId', 'instanceId', 'error']);
  assert.match(status.vms.find((v) => v.name === 'web-01')!.instanceId ?? '', /^i-/);

  // Wave order: every wave-2 VM started after every wave-1 VM finished.
  const report = JSON.parse((await vmconvoy('report', batch, '--format', 'json')).stdout) as Array<Record<string, string | number | null>>;
  const byName = new Map(report.map((r) => [r.name as string, r]));
  const wave1End = Math.max(...['web-01', 'app-01', 'legacy-01'].map((n) => Date.parse(byName.get(n)!.finished_at as string)));
  const wave2Start = Math.min(...['db-01', 'cache-01'].map((n) => Date.parse(byName.get(n)!.started_at as string)));
  // A VM tells its fleet it is done just before its workflow closes, so allow that instant (each wave takes
  // ~10 s here: mixed waves would overlap by seconds).
  assert.ok(wave2Start >= wave1End - 1500, `wave 2 started ${wave1End - wave2Start} ms before wave 1 finished`);
  assert.equal(byName.get('legacy-01')!.error_type, 'ConversionFailed');

  const csvReport = (await vmconvoy('report', batch, '--format', 'csv')).stdout.trim().split('\n');
  assert.equal(csvReport[0], 'name,status,instance_id,volume_id,conversion_task_id,bytes_uploaded,started_at,finished_at,duration_s,error_type,error_message');
  assert.equal(csvReport.length, 6);
  const md = (await vmconvoy('report', batch, '--format', 'md', '--out', path.join(dir.dir, 'r.md'))).code;
  assert.equal(md, 0);

  // The operator fixes the image and retries: only the failed VM runs again.
  await copyFile(path.join(dir.dir, 'legacy-fixed.raw'), path.join(dir.dir, 'legacy.raw'));
  const retry = await vmconvoy('retry', batch);
  assert.equal(retry.code, 0, retry.stderr);
  const watched = await vmconvoy('status', batch, '--watch');
  assert.equal(watched.code, 0, watched.stdout + watched.stderr);
  const after = JSON.parse((await vmconvoy('status', batch, '--json')).stdout) as { state: string; counts: Record<string, number> };
  assert.deepEqual([after.state, after.counts.completed, after.counts.failed], ['completed', 5, 0]);

  // Starting the same CSV again never converts a completed VM twice.
  const relaunch = await vmconvoy('start', csv, '--batch', batch, '--wait');
  assert.equal(relaunch.code, 0, relaunch.stdout + relaunch.stderr);
  const tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/`));
  for (const vm of ['web-01', 'app-01', 'db-01', 'cache-01']) {
    assert.equal(tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${vm}/`)).length, 1, `one conversion task for ${vm}`);
  }
});

test('pause holds new VMs, resume lets them run; cancel --vm cancels one VM', async () => {
  const csv = path.join(dir.dir, 'pause.csv');
  await writeFile(csv, [HEADER, ...['p1', 'p2', 'p3', 'p4'].map((n) => `${n},cache.raw,RAW,x86_64,t2.small,,1,`)].join('\n') + '\n');
  const batch = `e2e-pause-${stamp}`;
  await sim.configure({ speed: { conversionBytesPerSecond: 1024 * 1024 } });
  try {
    assert.equal((await vmconvoy('start', csv, '--batch', batch, '--max-uploads', '1', '--max-conversions', '1')).code, 0);
    assert.equal((await vmconvoy('pause', batch, '--reason', 'change freeze')).code, 0);
    const paused = JSON.parse((await vmconvoy('status', batch, '--json')).stdout) as { state: string; counts: Record<string, number> };
    assert.equal(paused.state, 'paused');
    assert.ok((paused.counts.pending ?? 0) >= 1, 'VMs wait while paused');
    const cancel = await vmconvoy('cancel', batch, '--vm', 'p1');
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal((await vmconvoy('resume', batch)).code, 0);
    await sim.configure({ speed: { conversionBytesPerSecond: 256 * 1024 * 1024 } });
    const done = await vmconvoy('status', batch, '--watch');
    assert.ok(done.code === 0 || done.code === 2);
    const final = JSON.parse((await vmconvoy('status', batch, '--json')).stdout) as { vms: Array<{ name: string; phase: string }> };
    assert.equal(final.vms.find((v) => v.name === 'p1')?.phase, 'Cancelled');
    assert.deepEqual(final.vms.filter((v) => v.name !== 'p1').map((v) => v.phase), ['Completed', 'Completed', 'Completed']);
    assert.ok((await sim.state()).tasks.every((t) => !t.manifestUrl.includes(`/${batch}/p1/`) || t.state !== 'active'), 'no active task left for p1');
  } finally {
    await sim.configure({ speed: { conversionBytesPerSecond: 256 * 1024 * 1024 } });
  }
});

test('an unreachable Temporal server is exit code 3 with what to do', async () => {
  const saved = env.TEMPORAL_ADDRESS;
  env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  try {
    const result = await vmconvoy('status', 'whatever');
    assert.equal(result.code, 3);
    assert.match(result.stderr, /Temporal is unreachable at 127\.0\.0\.1:1.*\n.*vmconvoy dev/);
  } finally {
    env.TEMPORAL_ADDRESS = saved;
  }
});
