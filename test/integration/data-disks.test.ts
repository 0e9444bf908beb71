/**
 * Data disks end to end (issue 19), with a worker process, the real Temporal server, S3 server and the EC2
 * simulator: a VM with a boot disk and two data disks ends with one instance and three attached volumes
 * of the right sizes, through a lost ImportVolume answer and a SIGKILL of the worker during a data disk's
 * upload (one conversion task per disk, nothing but the resource record left in S3); and an OVA with two
 * disks (OVF written by the test, disks made by qemu-img) migrates with its data disk attached.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { REPO_ROOT } from '../../dev/services';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import type { VmResourceRecord } from '../../common/contracts/activity-io';
import type { RollbackVmInput, RollbackVmResult } from '../../common/contracts/rollback';
import type { MigrateVmInput, MigrateVmResult } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { vmPrefix } from '../../common/object-keys';
import { vmStatusQuery } from '../../workflows/messages';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import { makeOva } from '../helpers/ova';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { localAwsConfig, startS3, startSim, startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import { until } from '../helpers/wait';

const PART = 2 * 1024 * 1024;
const GiB_MiB = 1024;
const batch = `disks-${Date.now().toString(36)}`;

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess | undefined;
let taskQueue: string;

interface SimVolume {
  volumeId: string;
  sizeGib: number;
  state: string;
  instanceId?: string;
  device?: string;
  tags: Record<string, string>;
}

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      config: {
        speed: {
          conversionBytesPerSecond: 256 * 1024 * 1024,
          stepSeconds: 0.2,
          pendingPollMs: 200,
          instanceTransitionSeconds: 0.3,
        },
      },
    }),
    tempDir('vmconvoy-data-disks-'),
  ]);
  // The second data disk's parts are held 400 ms each: its upload takes seconds, and the kill lands in it.
  proxy = await startCountingProxy(s3.endpoint, { putDelayMs: 400, slowPuts: /disk-2\/image\.part/ });
  taskQueue = uniqueTaskQueue('disks');
  worker = await startWorker();
});
after(async () => {
  await worker?.kill();
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

function startWorker(): Promise<ServiceProcess> {
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
    // A worker bundles the workflows at start: tens of seconds on a loaded machine.
    readyTimeoutMs: 240_000,
  });
}

async function startVm(name: string, image: string, dataDisks?: string[]) {
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name,
      image,
      dataDisks,
      architecture: 'x86_64',
      instanceType: 't2.medium',
      tags: { team: 'db' },
    }),
    settings: {
      ...DEFAULT_SETTINGS,
      partSizeBytes: PART,
      uploadConcurrency: 3,
      uploadHeartbeatSeconds: 3,
      pollInitialSeconds: 0.5,
      pollMaxSeconds: 2,
      quotaRetrySeconds: 1,
      importListingWaitSeconds: 10,
      deadlineSeconds: 900,
    },
  };
  return temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `${batch}/${name}`,
    args: [input],
  });
}

async function objectsUnder(vm: string): Promise<string[]> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
}

async function recordOf(vm: string): Promise<VmResourceRecord> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}resources.json` }));
  return JSON.parse(await out.Body!.transformToString()) as VmResourceRecord;
}

/** The VM's tasks by the manifest each was given: the boot disk's, then each data disk's folder. */
async function tasksOf(vm: string) {
  const tasks = (await sim.state()).tasks;
  const of = (folder: string) => tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${vm}/${folder}manifest.xml`));
  return { boot: of(''), disk1: of('disk-1/'), disk2: of('disk-2/') };
}

async function volumesOf(instanceId: string): Promise<SimVolume[]> {
  const volumes = (await sim.state()).volumes as unknown as SimVolume[];
  return volumes
    .filter((v) => v.instanceId === instanceId && v.state === 'in-use')
    .sort((a, b) => (a.device ?? '').localeCompare(b.device ?? ''));
}

test('boot disk + two data disks, through a lost ImportVolume answer and a worker kill in a data-disk upload', async () => {
  const boot = await makeImage(dir.dir, 'multi-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 4 });
  // Virtual sizes of 9 and 10 GiB (files of a few MiB): the volumes' sizes tell the disks apart.
  const dataA = await makeImage(dir.dir, 'multi-a.vmdk', 'stream-vmdk', { virtualMiB: 9 * GiB_MiB, randomMiB: 3 });
  const dataB = await makeImage(dir.dir, 'multi-b.vmdk', 'stream-vmdk', { virtualMiB: 10 * GiB_MiB, randomMiB: 24 });
  await sim.configure({ faults: { actions: ['ImportVolume'], lostImportResponseRate: 1 } });
  try {
    const handle = await startVm('multi', boot, [dataA, dataB]);
    await until(
      () => Promise.resolve(proxy.putCount(/multi\/disk-2\/image\.part/)),
      (n) => n >= 3,
      { timeoutMs: 120_000, intervalMs: 50 }
    );
    await worker!.kill();
    // Counted at the wire: the kill landed before every part of the second data disk was sent.
    const partsOfB = Math.ceil((await stat(dataB)).size / PART);
    assert.ok(proxy.putCount(/multi\/disk-2\/image\.part/) < partsOfB, 'the kill landed in the upload');
    worker = await startWorker();
    // Each ImportVolume's answer is lost once; then the answers get through.
    await until(
      async () => {
        const t = await tasksOf('multi');
        return t.disk1.length + t.disk2.length;
      },
      (n) => n >= 2,
      { timeoutMs: 120_000, intervalMs: 200 }
    );
    await sim.configure({ faults: { lostImportResponseRate: 0, actions: [] } });
    const result = (await handle.result()) as MigrateVmResult;
    assert.equal(result.phase, 'Completed');

    const tasks = await tasksOf('multi');
    assert.deepEqual(
      [tasks.boot.length, tasks.disk1.length, tasks.disk2.length],
      [1, 1, 1],
      'one conversion task per disk'
    );
    assert.ok([...tasks.boot, ...tasks.disk1, ...tasks.disk2].every((t) => t.state === 'completed'));
    assert.equal((await sim.state()).calls.ImportVolume! >= 2, true);

    const volumes = await volumesOf(result.instanceId);
    assert.deepEqual(
      volumes.map((v) => [v.device, v.sizeGib, v.volumeId]),
      [
        ['/dev/sda1', 8, result.volumeId],
        ['/dev/sdf', 9, tasks.disk1[0]!.volumeId],
        ['/dev/sdg', 10, tasks.disk2[0]!.volumeId],
      ]
    );
    assert.deepEqual(result.dataVolumeIds, [tasks.disk1[0]!.volumeId, tasks.disk2[0]!.volumeId]);
    for (const v of volumes) assert.deepEqual([v.tags['vmconvoy:vm'], v.tags.team], ['multi', 'db'], v.volumeId);
    const instances = (await sim.state()).instances.filter((i) => i.tags['vmconvoy:vm'] === 'multi');
    assert.deepEqual(
      instances.map((i) => [i.instanceId, i.state]),
      [[result.instanceId, 'stopped']]
    );

    // Nothing but the resource record left in S3, and the record names every volume.
    assert.deepEqual(await objectsUnder('multi'), ['resources.json']);
    const record = await recordOf('multi');
    assert.deepEqual(
      record.imports
        .filter((i) => i.dataDisk !== undefined)
        .map((i) => [i.dataDisk, i.volumeId])
        .sort(),
      [
        [1, tasks.disk1[0]!.volumeId],
        [2, tasks.disk2[0]!.volumeId],
      ]
    );
    const status = await handle.query(vmStatusQuery);
    assert.deepEqual(
      status.dataVolumes?.map((d) => [d.disk, d.device, d.phase, d.volumeId]),
      [
        [1, '/dev/sdf', 'Attached', tasks.disk1[0]!.volumeId],
        [2, '/dev/sdg', 'Attached', tasks.disk2[0]!.volumeId],
      ]
    );

    // `vmconvoy rollback` removes the instance and every volume the record names, data volumes included.
    const activities = createActivities({ config: localAwsConfig(s3, sim), qemuImg: false });
    const rolled = await new MockActivityEnvironment().run<
      [RollbackVmInput],
      RollbackVmResult,
      typeof activities.rollbackVm
    >(activities.rollbackVm, {
      batch,
      vm: 'multi',
      namespace: temporal.namespace,
      force: false,
      execute: true,
    });
    assert.deepEqual(
      rolled.items.filter((i) => i.kind === 'volume').map((i) => [i.id, i.action ?? i.skip]),
      volumes.map((v) => [v.volumeId, 'delete'])
    );
    const after = await sim.state();
    assert.equal(after.instances.find((i) => i.instanceId === result.instanceId)?.state, 'terminated');
    assert.deepEqual(
      (after.volumes as unknown as SimVolume[])
        .filter((v) => volumes.some((x) => x.volumeId === v.volumeId))
        .map((v) => v.state),
      ['deleted', 'deleted', 'deleted']
    );
  } finally {
    await sim.configure({ faults: { lostImportResponseRate: 0, actions: [] } });
  }
});

test('an OVA with two disks migrates: the boot disk becomes the instance, the other attaches at /dev/sdf', async () => {
  const bootDisk = await makeImage(dir.dir, 'ova-boot.vmdk', 'stream-vmdk', { virtualMiB: 32, randomMiB: 3 });
  const dataDisk = await makeImage(dir.dir, 'ova-data.vmdk', 'stream-vmdk', { virtualMiB: 9 * GiB_MiB, randomMiB: 2 });
  const ova = await makeOva(dir.dir, 'two-disks', { disks: [bootDisk, dataDisk] });
  const handle = await startVm('ova', ova);
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');
  const volumes = await volumesOf(result.instanceId);
  assert.deepEqual(
    volumes.map((v) => [v.device, v.sizeGib]),
    [
      ['/dev/sda1', 8],
      ['/dev/sdf', 9],
    ]
  );
  assert.deepEqual(result.dataVolumeIds, [volumes[1]!.volumeId]);
  const tasks = await tasksOf('ova');
  assert.deepEqual([tasks.boot.length, tasks.disk1.length, tasks.disk2.length], [1, 1, 0]);
  assert.deepEqual(await objectsUnder('ova'), ['resources.json']);
});

test('a data disk whose conversion fails fails the VM and leaves no data volume, task or part behind', async () => {
  const boot = await makeImage(dir.dir, 'fail-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 2 });
  const good = await makeImage(dir.dir, 'fail-a.raw', 'raw', { virtualMiB: 8, randomMiB: 2 });
  const bad = await makeImage(dir.dir, 'fail-b.raw', 'raw', {
    virtualMiB: 8,
    randomMiB: 2,
    marker: 'VMCONVOY_SIM_FAIL=ClientError: data disk refused by the test',
  });
  const handle = await startVm('faildisk', boot, [good, bad]);
  // The VM's failure names the disk and carries AWS's status message.
  await assert.rejects(handle.result(), (err: Error & { cause?: { message?: string } }) =>
    /^data disk 2: .*ClientError: data disk refused by the test/.test(err.cause?.message ?? '')
  );
  const tasks = await tasksOf('faildisk');
  assert.deepEqual([tasks.boot.length, tasks.disk1.length, tasks.disk2.length], [1, 1, 1]);
  assert.equal(tasks.disk2[0]!.state, 'cancelled');
  const state = await sim.state();
  const dataVolumeIds = [tasks.disk1[0]!.volumeId, tasks.disk2[0]!.volumeId];
  const left = (state.volumes as unknown as SimVolume[]).filter(
    (v) => dataVolumeIds.includes(v.volumeId) && v.state !== 'deleted'
  );
  assert.deepEqual(left, [], 'no data volume left');
  assert.equal(
    state.tasks.some((t) => t.state === 'active' && t.manifestUrl.includes(`/${batch}/faildisk/`)),
    false,
    'no task left converting'
  );
  // The instance stays stopped for inspection (onFail keep): only its record remains in S3, naming the volumes.
  assert.deepEqual(await objectsUnder('faildisk'), ['resources.json']);
  const record = await recordOf('faildisk');
  assert.deepEqual(
    record.imports
      .filter((i) => i.dataDisk !== undefined)
      .map((i) => [i.dataDisk, i.volumeDeleted])
      .sort(),
    [
      [1, true],
      [2, true],
    ]
  );
});
