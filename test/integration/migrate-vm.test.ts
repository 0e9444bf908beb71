/**
 * migrateVmWorkflow end to end: the real Temporal server, the real S3 server (behind a proxy that counts
 * what crosses the wire), the EC2 simulator over HTTP with the real AWS SDK, and the real activities.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { createWorkers } from '../../worker/create-worker';
import { vmStatusQuery } from '../../workflows/messages';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings, VmSpecInput } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { recordHistory } from '../helpers/histories';
import type { ImageKind } from '../helpers/images';
import { makeImage } from '../helpers/images';
import type { SimState, TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';
import { scanForSecrets } from '../helpers/secret-scan';
import { until } from '../helpers/wait';

const FAST_SIM = {
  speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200, minConversionSeconds: 0 },
};
const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * 1024 * 1024,
  uploadConcurrency: 3,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  quotaRetrySeconds: 1,
  deadlineSeconds: 600,
};
const USER_DATA_SECRET = 'USERDATA-d0-not-leak-7f3a9c';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: { dir: string; remove(): Promise<void> };
let taskQueue: string;
let worker: Worker;
let workerRun: Promise<void>;
const batch = `vmtest-${Date.now().toString(36)}`;
const handles: WorkflowHandle[] = [];

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: FAST_SIM }),
    tempDir('vmconvoy-images-'),
  ]);
  proxy = await startCountingProxy(s3.endpoint);
  taskQueue = uniqueTaskQueue('migrate-vm');
  const aws = { ...localAwsConfig(s3, sim), s3Endpoint: proxy.endpoint };
  const workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws,
    workflowBundle: await workflowBundle(),
  });
  worker = workers[0]!;
  workerRun = worker.run();
});

after(async () => {
  worker?.shutdown();
  await workerRun;
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), images?.remove()]);
  await temporal?.stop();
});

async function objectsUnder(vm: string): Promise<string[]> {
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/${batch}/${vm}/` }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

async function startVm(
  name: string,
  kind: ImageKind,
  spec: Partial<VmSpecInput> = {},
  settings: Partial<MigrationSettings> = {},
  marker?: string
) {
  const image = await makeImage(images.dir, `${name}.img`, kind, { virtualMiB: 16, randomMiB: 5, marker });
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({ name, image, architecture: 'x86_64', instanceType: 't2.medium', ...spec }),
    settings: { ...SETTINGS, ...settings },
  };
  const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `${batch}/${name}`,
    args: [input],
  });
  handles.push(handle);
  return handle;
}

function tasksFor(state: SimState, vm: string): SimState['tasks'] {
  return state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${vm}/manifest.xml`));
}

test('stream VMDK, fixed VHD, dynamic VHD and RAW each end as a validated, tagged, stopped instance with the bucket emptied', async () => {
  const userData = path.join(images.dir, 'user-data.sh');
  await writeFile(userData, `#!/bin/sh\necho ${USER_DATA_SECRET}\n`);
  const vms: Array<[string, ImageKind]> = [
    ['web-vmdk', 'stream-vmdk'],
    ['app-fixed-vhd', 'fixed-vhd'],
    ['app-dyn-vhd', 'dynamic-vhd'],
    ['db-raw', 'raw'],
  ];
  const started = await Promise.all(
    vms.map(([name, kind]) =>
      startVm(name, kind, { tags: { team: 'infra' }, userDataFile: name === 'db-raw' ? userData : undefined })
    )
  );
  const results = (await Promise.all(started.map((h) => h.result()))) as MigrateVmResult[];
  const state = await sim.state();
  for (const [i, [name]] of vms.entries()) {
    const result = results[i]!;
    assert.equal(result.phase, 'Completed');
    assert.match(result.instanceId, /^i-/);
    assert.match(result.volumeId, /^vol-/);
    assert.equal(tasksFor(state, name).length, 1, `one conversion task for ${name}`);
    const instance = state.instances.find((x) => x.instanceId === result.instanceId);
    assert.ok(instance, `instance of ${name} exists`);
    assert.equal(instance.state, 'stopped');
    assert.equal(instance.instanceType, 't2.medium');
    assert.deepEqual(instance.tags, { Name: name, 'vmconvoy:batch': batch, 'vmconvoy:vm': name, team: 'infra' });
    assert.deepEqual(await objectsUnder(name), [], `no objects left for ${name}`);
    const status = await started[i]!.query(vmStatusQuery);
    assert.equal(status.phase, 'Completed');
    assert.equal(status.instanceId, result.instanceId);
  }
  await recordHistory(started[0]!, 'migrateVmWorkflow--stream-vmdk-completed');
});

test('a lost ImportInstance response leaves exactly one conversion task, and the VM completes', async () => {
  await sim.configure({ faults: { lostImportResponseRate: 1 } });
  try {
    const handle = await startVm('lost-response', 'raw');
    // Give the first attempt time to create the task and lose the answer, then let retries through.
    await until(async () => tasksFor(await sim.state(), 'lost-response').length > 0, Boolean, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    await sim.configure({ faults: { lostImportResponseRate: 0 } });
    const result = (await handle.result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');
    assert.equal(tasksFor(await sim.state(), 'lost-response').length, 1);
    await recordHistory(handle, 'migrateVmWorkflow--lost-import-response');
  } finally {
    await sim.configure({ faults: { lostImportResponseRate: 0 } });
  }
});

test('30% throttling and 5% server errors: the VM still completes', async () => {
  await sim.configure({ faults: { throttleRate: 0.3, internalErrorRate: 0.05 } });
  try {
    const result = (await (await startVm('throttled', 'stream-vmdk')).result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');
    const state = await sim.state();
    assert.equal(tasksFor(state, 'throttled').length, 1);
  } finally {
    await sim.configure({ faults: { throttleRate: 0, internalErrorRate: 0 } });
  }
});

test('with an import quota of 1, three VMs all complete, one conversion at a time', async () => {
  await sim.configure({ limits: { maxActiveConversions: 1 }, speed: { conversionBytesPerSecond: 16 * 1024 * 1024 } });
  try {
    const started = await Promise.all(['q-1', 'q-2', 'q-3'].map((n) => startVm(n, 'raw')));
    let maxActive = 0;
    let done = false;
    const all = Promise.all(started.map((h) => h.result())).finally(() => (done = true));
    while (!done) {
      const state = await sim.state();
      const active = state.tasks.filter((t) => t.state === 'active' && /\/q-\d\/manifest/.test(t.manifestUrl)).length;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 100));
    }
    const results = (await all) as MigrateVmResult[];
    assert.deepEqual(
      results.map((r) => r.phase),
      ['Completed', 'Completed', 'Completed']
    );
    assert.equal(maxActive, 1);
    const statuses = await Promise.all(started.map((h) => h.query(vmStatusQuery)));
    assert.ok(
      statuses.some((s) => s.retries > 0),
      'at least one VM waited for the quota'
    );
  } finally {
    await sim.configure({ limits: { maxActiveConversions: 5 }, speed: FAST_SIM.speed });
  }
});

test("an image the conversion rejects fails the VM with AWS's message, cancels nothing twice and deletes its objects", async () => {
  const message = 'ClientError: Unsupported kernel version 2.6.18';
  const handle = await startVm('bad-kernel', 'raw', {}, {}, `VMCONVOY_SIM_FAIL=${message}`);
  const err = await handle.result().then(
    () => assert.fail('the VM should have failed'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.match(String(err.cause?.message), /Unsupported kernel version 2\.6\.18/);
  const status = await handle.query(vmStatusQuery);
  assert.equal(status.phase, 'Failed');
  assert.equal(status.lastError?.type, 'ConversionFailed');
  const tasks = tasksFor(await sim.state(), 'bad-kernel');
  assert.equal(tasks.length, 1);
  assert.notEqual(tasks[0]!.state, 'active');
  assert.deepEqual(await objectsUnder('bad-kernel'), []);
  await recordHistory(handle, 'migrateVmWorkflow--conversion-failed');
});

test('cancel during conversion: the task ends cancelled, the objects are deleted, the workflow ends cancelled', async () => {
  await sim.configure({ speed: { conversionBytesPerSecond: 256 * 1024 } });
  try {
    const handle = await startVm('cancel-me', 'raw');
    await until(async () => (await handle.query(vmStatusQuery)).phase === 'Converting', Boolean, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('the VM should have been cancelled'),
      (e: unknown) => e
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    await until(async () => tasksFor(await sim.state(), 'cancel-me').every((t) => t.state === 'cancelled'), Boolean, {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    assert.deepEqual(await objectsUnder('cancel-me'), []);
    assert.equal((await handle.query(vmStatusQuery)).phase, 'Cancelled');
    await recordHistory(handle, 'migrateVmWorkflow--cancelled-while-converting');
  } finally {
    await sim.configure({ speed: FAST_SIM.speed });
  }
});

test('a dry run checks everything with DryRun and creates nothing', async () => {
  const before = (await sim.state()).tasks.length;
  const result = (await (await startVm('dry', 'raw', {}, { dryRun: true })).result()) as MigrateVmResult;
  assert.equal(result.dryRun, true);
  assert.equal((await sim.state()).tasks.length, before);
  assert.deepEqual(await objectsUnder('dry'), []);
});

// Runs last (node:test runs a file's tests in order): every history made above, all runs.
test('no workflow history holds a presigned-URL signature, the user data or the secret key', async () => {
  assert.ok(handles.length >= 10, `scanned ${handles.length} workflows`);
  const findings = await scanForSecrets(temporal.client, handles, [
    USER_DATA_SECRET,
    `echo ${USER_DATA_SECRET}`,
    s3.secretAccessKey,
  ]);
  assert.deepEqual(findings, []);
});
