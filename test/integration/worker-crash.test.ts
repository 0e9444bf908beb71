/**
 * A worker process is SIGKILLed in the middle of an upload and started again: the upload resumes on the
 * new process, and the bytes sent again (counted at the wire by a proxy in front of S3) are at most
 * parallelism × part size. Killed during a boot check (after StartInstances), the VM still completes and
 * its instance ends stopped.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../../dev/services';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import type { MigrateVmInput, MigrateVmResult } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';
import { until } from '../helpers/wait';

const PART = 2 * 1024 * 1024;
const CONCURRENCY = 3;

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess | undefined;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      config: { speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 } },
    }),
    tempDir('vmconvoy-crash-'),
  ]);
  // Each image part is held 300 ms, so the upload takes seconds and a kill lands in the middle of it.
  proxy = await startCountingProxy(s3.endpoint, { putDelayMs: 300, slowPuts: /image\.part/ });
});
after(async () => {
  await worker?.kill();
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

function startWorker(taskQueue: string): Promise<ServiceProcess> {
  return spawnService({
    name: 'worker',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(REPO_ROOT, 'worker', 'main.ts')],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      VMCONVOY_TASK_QUEUE: taskQueue,
      // A worker reads images only under its roots (it refuses to start without them).
      VMCONVOY_IMAGE_ROOTS: dir.dir,
      AWS_REGION: s3.region,
      AWS_ENDPOINT_URL_EC2: sim.endpoint,
      AWS_ENDPOINT_URL_S3: proxy.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      VMCONVOY_BUCKET: s3.bucket,
      VMCONVOY_LOG_FORMAT: 'json',
      VMCONVOY_LOG_LEVEL: 'info',
    },
    readyWhen: (line) => line.includes('vmconvoy worker started'),
    readyTimeoutMs: 60_000,
  });
}

test('SIGKILL in the middle of an upload: it resumes, re-sending at most parallelism × part size', async () => {
  const taskQueue = uniqueTaskQueue('crash');
  const image = await makeImage(dir.dir, 'crash.raw', 'raw', { virtualMiB: 48, randomMiB: 48 });
  const imageBytes = 48 * 1024 * 1024;
  worker = await startWorker(taskQueue);
  const input: MigrateVmInput = {
    batch: 'crash',
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name: 'crash-vm',
      image,
      architecture: 'x86_64',
      instanceType: 't2.medium',
    }),
    settings: {
      ...DEFAULT_SETTINGS,
      // The byte-for-byte upload's resume (the stream-optimized one's: test/integration/stream-upload.test.ts).
      uploadFormat: 'as-is',
      partSizeBytes: PART,
      uploadConcurrency: CONCURRENCY,
      uploadHeartbeatSeconds: 3,
      pollInitialSeconds: 0.5,
      pollMaxSeconds: 2,
      deadlineSeconds: 600,
    },
  };
  const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `crash/crash-vm-${taskQueue}`,
    args: [input],
  });

  // Kill once a third of the parts went through.
  const deadline = Date.now() + 60_000;
  while (proxy.putCount(/image\.part/) < 8) {
    if (Date.now() > deadline) throw new Error(`upload did not progress: ${proxy.putCount(/image\.part/)} parts`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await worker.kill();
  const beforeCrash = proxy.putBytes(/image\.part/);
  assert.ok(beforeCrash < imageBytes, 'the kill landed before the upload finished');

  worker = await startWorker(taskQueue);
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');

  const sent = proxy.putBytes(/image\.part/);
  const resent = sent - imageBytes;
  console.log(
    `[crash] image ${imageBytes} B; sent before the kill ${beforeCrash} B; total sent ${sent} B; sent again ${resent} B (bound ${CONCURRENCY * PART} B)`
  );
  assert.ok(sent >= imageBytes, 'every byte reached S3');
  assert.ok(resent <= CONCURRENCY * PART, `re-sent ${resent} B > ${CONCURRENCY} × ${PART} B`);
});

test('SIGKILL during the boot check, after StartInstances: the VM completes and the instance ends stopped', async () => {
  const taskQueue = uniqueTaskQueue('crash-boot');
  const image = await makeImage(dir.dir, 'crash-boot.raw', 'raw', { virtualMiB: 8, randomMiB: 2 });
  // Slow instance transitions: the kill lands while the instance is starting or running.
  await sim.configure({ speed: { instanceTransitionSeconds: 4 } });
  try {
    await worker?.kill(); // the previous test's worker serves another queue
    worker = await startWorker(taskQueue);
    const input: MigrateVmInput = {
      batch: 'crash',
      spec: vmSpecSchema.parse({
        ...RANDOM_IMAGE_ROW,
        name: 'boot-vm',
        image,
        architecture: 'x86_64',
        instanceType: 't2.medium',
        bootCheck: true,
      }),
      settings: {
        ...DEFAULT_SETTINGS,
        partSizeBytes: PART,
        pollInitialSeconds: 0.5,
        pollMaxSeconds: 2,
        bootCheckTimeoutSeconds: 120,
        deadlineSeconds: 900,
      },
    };
    const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
      taskQueue,
      workflowId: `crash/boot-vm-${taskQueue}`,
      args: [input],
    });
    const started = await until(
      () => sim.state(),
      (s) => (s.calls.StartInstances ?? 0) >= 1,
      { timeoutMs: 120_000, intervalMs: 50 }
    );
    await worker.kill();
    const instanceId = started.instances.find((i) => i.tags['vmconvoy:vm'] === 'boot-vm')?.instanceId;
    assert.ok(instanceId, 'the instance exists and is tagged');
    const stateAt = async () => (await sim.state()).instances.find((i) => i.instanceId === instanceId)?.state;
    assert.ok(['pending', 'running'].includes((await stateAt()) ?? ''), 'the kill left the instance starting');

    worker = await startWorker(taskQueue);
    const result = (await handle.result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');
    assert.equal(result.instanceId, instanceId);
    await until(stateAt, (s) => s === 'stopped', { timeoutMs: 60_000 });
    const state = await sim.state();
    assert.equal(state.tasks.filter((t) => t.manifestUrl.includes('/boot-vm/')).length, 1, 'one conversion task');
    console.log(
      `[crash] boot check: StartInstances ${state.calls.StartInstances ?? 0}, StopInstances ${state.calls.StopInstances ?? 0}`
    );
  } finally {
    await sim.configure({ speed: { instanceTransitionSeconds: 0.5 } });
  }
});
