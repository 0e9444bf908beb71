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
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
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
import { vmPrefix } from '../../common/object-keys';
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
  // This simulator lists new tasks at once: a short wait after an ambiguous ImportInstance failure is enough
  // (the 90 s default and the wait itself are tested in activities-ec2 with a listing delay).
  importListingWaitSeconds: 10,
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

/** The VM's objects, where its workflow puts them: under the Temporal namespace. */
async function objectsUnder(vm: string): Promise<string[]> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  assert.match(prefix, /\/ns=default\//);
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
}

async function startVm(
  name: string,
  kind: ImageKind,
  spec: Partial<VmSpecInput> = {},
  settings: Partial<MigrationSettings> = {},
  marker?: string,
  keepImage = false
) {
  const image = keepImage
    ? path.join(images.dir, `${name}.img`)
    : await makeImage(images.dir, `${name}.img`, kind, { virtualMiB: 16, randomMiB: 5, marker });
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name,
      image,
      architecture: 'x86_64',
      instanceType: 't2.medium',
      ...spec,
    }),
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
    // The record of what was created stays (what `vmconvoy rollback` removes); parts and manifest go.
    assert.deepEqual(await objectsUnder(name), ['resources.json'], `only the record left for ${name}`);
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

// --- ownership (issue 15): boot checks never leave an instance running; a retry never leaves a second one.

async function failedWith(handle: WorkflowHandle): Promise<string> {
  const err = await handle.result().then(
    () => assert.fail('the VM should have failed'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  return (await handle.query(vmStatusQuery)).lastError?.type ?? '';
}

const instanceOf = (state: SimState, id: string | undefined) => state.instances.find((i) => i.instanceId === id);

/** A boot check that cannot pass: 1 s for an instance that needs 2 s to start. */
async function failBootCheck(name: string): Promise<{ handle: WorkflowHandle; instanceId: string }> {
  const handle = await startVm(name, 'raw', { bootCheck: true }, { bootCheckTimeoutSeconds: 1 });
  assert.equal(await failedWith(handle), 'ValidationFailed');
  const status = await handle.query(vmStatusQuery);
  assert.equal(status.phase, 'Failed');
  assert.match(status.instanceId ?? '', /^i-/, "the failed VM's status names its instance");
  assert.match(status.conversionTaskId ?? '', /^import-i-/);
  const instance = instanceOf(await sim.state(), status.instanceId);
  assert.equal(instance?.state, 'stopped', 'the failed boot check stopped the instance');
  assert.equal(instance?.tags['vmconvoy:vm'], name);
  assert.deepEqual(await objectsUnder(name), ['resources.json'], 'only the record of what was created stays');
  return { handle, instanceId: status.instanceId! };
}

test('retry after a failed boot check adopts the intact instance: one task, one instance, nothing left in S3', async () => {
  await sim.configure({ speed: { instanceTransitionSeconds: 2 } });
  try {
    const first = await failBootCheck('retry-adopt');
    const retried = await startVm(
      'retry-adopt',
      'raw',
      { bootCheck: true },
      { bootCheckTimeoutSeconds: 60 },
      undefined,
      true
    );
    const result = (await retried.result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');
    assert.equal(result.instanceId, first.instanceId, 'the earlier instance is adopted');
    const state = await sim.state();
    assert.equal(tasksFor(state, 'retry-adopt').length, 1, 'no second conversion');
    assert.equal(instanceOf(state, result.instanceId)?.state, 'stopped');
    assert.deepEqual(await objectsUnder('retry-adopt'), ['resources.json']);
  } finally {
    await sim.configure({ speed: FAST_SIM.speed });
  }
});

test('retry after the image changed terminates the earlier instance and imports again: one live instance', async () => {
  await sim.configure({ speed: { instanceTransitionSeconds: 2 } });
  try {
    const first = await failBootCheck('retry-new');
    // The operator fixes the image: other bytes, so the earlier conversion is not what this run would import.
    const retried = await startVm('retry-new', 'raw', { bootCheck: true }, { bootCheckTimeoutSeconds: 60 }, 'fixed');
    const result = (await retried.result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');
    assert.notEqual(result.instanceId, first.instanceId);
    const state = await sim.state();
    const mine = state.instances.filter((i) => i.tags['vmconvoy:vm'] === 'retry-new');
    assert.deepEqual(
      mine.map((i) => [i.instanceId, i.state]).sort(),
      [
        [first.instanceId, 'terminated'],
        [result.instanceId, 'stopped'],
      ].sort(),
      'the first terminated, the second stopped, none untagged'
    );
    assert.deepEqual(await objectsUnder('retry-new'), ['resources.json']);
  } finally {
    await sim.configure({ speed: FAST_SIM.speed });
  }
});

test('onFail terminate: a failed boot check leaves no instance, no volume and no record behind', async () => {
  await sim.configure({ speed: { instanceTransitionSeconds: 2 } });
  try {
    const handle = await startVm(
      'fail-end',
      'raw',
      { bootCheck: true },
      { bootCheckTimeoutSeconds: 1, onFail: 'terminate' }
    );
    assert.equal(await failedWith(handle), 'ValidationFailed');
    const status = await handle.query(vmStatusQuery);
    const state = await sim.state();
    const instance = instanceOf(state, status.instanceId);
    assert.equal(instance?.state, 'terminated', "the failed VM's instance is terminated, not kept stopped");
    const [task] = tasksFor(state, 'fail-end');
    assert.equal(state.volumes.find((v) => v.volumeId === task?.volumeId)?.state, 'deleted');
    assert.deepEqual(await objectsUnder('fail-end'), [], 'nothing remains, so nothing stays recorded');
  } finally {
    await sim.configure({ speed: FAST_SIM.speed });
  }
});

test('cancel during the boot check: the instance ends stopped and the workflow cancelled', async () => {
  await sim.configure({ speed: { instanceTransitionSeconds: 3 } });
  try {
    const startsBefore = (await sim.state()).calls.StartInstances ?? 0;
    const handle = await startVm('cancel-boot', 'raw', { bootCheck: true }, { bootCheckTimeoutSeconds: 120 });
    // Cancel once the boot check started the instance (not while it converts: that is another test).
    const started = await until(
      () => sim.state(),
      (s) =>
        (s.calls.StartInstances ?? 0) > startsBefore &&
        s.instances.some((i) => i.tags['vmconvoy:vm'] === 'cancel-boot' && ['pending', 'running'].includes(i.state)),
      { timeoutMs: 60_000, intervalMs: 100 }
    );
    const instanceId = started.instances.find((i) => i.tags['vmconvoy:vm'] === 'cancel-boot')!.instanceId;
    await handle.cancel();
    await handle.result().catch(() => undefined);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    await until(
      async () => instanceOf(await sim.state(), instanceId)?.state,
      (s) => s === 'stopped',
      {
        timeoutMs: 30_000,
      }
    );
    const status = await handle.query(vmStatusQuery);
    assert.equal(status.instanceId, instanceId);
  } finally {
    await sim.configure({ speed: FAST_SIM.speed });
  }
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
