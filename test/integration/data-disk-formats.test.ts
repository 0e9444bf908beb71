/**
 * Data disks in formats EC2 does not take as they are (issue 19), through the test bed (real Temporal, S3
 * server, simulator over HTTP, real activities, images made by mke2fs -d and qemu-img): a RAW boot disk with
 * a qcow2 and a VHDX data disk (ext4 file systems) ends with one instance and three attached volumes of the
 * right sizes, each data disk converted on the site worker (what was uploaded is the same disk, judged by
 * qemu-img compare), and the scratch folder empty; a scratch folder too small for the sum of the VM's
 * conversions refuses before any conversion, naming each disk; a dry run pre-flights every data disk and
 * shows each as Checked, and a bad data disk fails it naming the disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { vmPrefix } from '../../common/object-keys';
import { vmStatusQuery } from '../../workflows/messages';
import { RANDOM_IMAGE_ROW, makeImage } from '../helpers/images';
import { until } from '../helpers/wait';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import type { MigrationBed } from '../helpers/migration-bed';
import { QUICK_CONVERSIONS, startMigrationBed } from '../helpers/migration-bed';

const MiB = 2 ** 20;
const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * MiB,
  uploadConcurrency: 3,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  quotaRetrySeconds: 1,
  importListingWaitSeconds: 10,
  deadlineSeconds: 600,
};

let bed: MigrationBed;
let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string };
let images: string;
let scratch: string;
let smallScratch: string;
const queues = { roomy: '', small: '' };
const batch = `ddfmt-${Date.now().toString(36)}`;

before(async () => {
  bed = await startMigrationBed('ddfmt', {
    sim: { config: { speed: { ...QUICK_CONVERSIONS, instanceTransitionSeconds: 0.3 } } },
  });
  ({ temporal, s3, sim, images, scratch } = bed);
  dir = { dir: bed.dir };
  smallScratch = path.join(bed.dir, 'small-scratch');
  await mkdir(smallScratch);
  // Two workers: one with room to convert, one whose scratch folder is capped at 8 MiB.
  queues.roomy = await bed.worker('roomy');
  queues.small = await bed.worker('small', { scratch: { dir: smallScratch, capBytes: 8 * MiB } });
});

after(async () => bed?.stop());

/**
 * A data disk as a hypervisor leaves it: an ext4 file system (mke2fs -d, with a few MiB of files) on a disk
 * of `virtualGiB` (sparse), put into `qemuFormat` by qemu-img convert.
 */
function ext4Disk(name: string, virtualGiB: number, qemuFormat: 'qcow2' | 'vhdx'): string {
  const files = path.join(dir.dir, `${name}-files`);
  execFileSync('mkdir', ['-p', path.join(files, 'var', 'lib', 'data')]);
  execFileSync(
    'dd',
    ['if=/dev/urandom', `of=${path.join(files, 'var', 'lib', 'data', 'table.bin')}`, 'bs=1M', 'count=3'],
    {
      stdio: 'ignore',
    }
  );
  execFileSync('sh', ['-c', `printf 'rows of ${name}\\n' > ${path.join(files, 'README')}`]);
  const raw = path.join(dir.dir, `${name}.raw`);
  execFileSync('truncate', ['-s', '64M', raw]);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', files, raw]);
  execFileSync('truncate', ['-s', `${virtualGiB}G`, raw]);
  const out = path.join(images, `${name}.${qemuFormat}`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', qemuFormat, raw, out]);
  return out;
}

function input(name: string, image: string, dataDisks: string[], settings: Partial<MigrationSettings> = {}) {
  const vm: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name,
      image,
      dataDisks,
      architecture: 'x86_64',
      instanceType: 't2.medium',
    }),
    settings: { ...SETTINGS, ...settings },
  };
  return vm;
}

function start(vm: MigrateVmInput, queue: 'roomy' | 'small' = 'roomy') {
  return temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue: queues[queue],
    workflowId: `${batch}/${vm.spec.name}`,
    args: [vm],
  });
}

async function scratchFiles(folder = scratch): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

async function objectsOf(vm: string): Promise<string[]> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
}

/** The file a data disk's parts make, put back together from S3 in part order. */
async function uploadedDisk(vm: string, disk: number): Promise<string> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const parts = (await objectsOf(vm))
    .map((k) => /^disk-(\d+)\/image\.part(\d+)$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) === disk)
    .sort((a, b) => Number(a[2]) - Number(b[2]));
  assert.ok(parts.length > 0, `parts of data disk ${disk}`);
  const bodies: Buffer[] = [];
  for (const m of parts) {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}${m[0]}` }));
    bodies.push(Buffer.from(await out.Body!.transformToByteArray()));
  }
  const file = path.join(dir.dir, `${vm}-disk-${disk}.uploaded.vmdk`);
  await writeFile(file, Buffer.concat(bodies));
  return file;
}

test('a RAW boot disk with a qcow2 and a VHDX data disk: both converted on the site, one instance, three volumes, scratch empty', async () => {
  const boot = await makeImage(images, 'mixed-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 4 });
  const qcow2 = ext4Disk('mixed-data-a', 9, 'qcow2');
  const vhdx = ext4Disk('mixed-data-b', 10, 'vhdx');
  // Objects kept so the test can read back what was uploaded of each data disk.
  const handle = await start(input('mixed', boot, [qcow2, vhdx], { keepObjects: true }));
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');

  const state = await sim.state();
  const tasksOf = (folder: string) =>
    state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/mixed/${folder}manifest.xml`));
  assert.deepEqual(
    ['', 'disk-1/', 'disk-2/'].map((f) => tasksOf(f).length),
    [1, 1, 1],
    'one conversion task per disk'
  );
  // What EC2 was given for each data disk is a stream-optimized VMDK of the very same disk (qemu-img's verdict).
  for (const [disk, source, format] of [
    [1, qcow2, 'qcow2'],
    [2, vhdx, 'vhdx'],
  ] as const) {
    const uploaded = await uploadedDisk('mixed', disk);
    execFileSync('qemu-img', ['check', '-f', 'vmdk', uploaded]);
    execFileSync('qemu-img', ['compare', '-f', format, '-F', 'vmdk', source, uploaded]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', uploaded]).toString()) as {
      'format-specific': { data: { 'create-type': string } };
    };
    assert.equal(info['format-specific'].data['create-type'], 'streamOptimized', `data disk ${disk}`);
    assert.equal(tasksOf(`disk-${disk}/`)[0]!.bytes, (await stat(uploaded)).size, `data disk ${disk}: Image.Bytes`);
  }

  const volumes = (
    state.volumes as unknown as Array<{ instanceId?: string; state: string; device?: string; sizeGib: number }>
  )
    .filter((v) => v.instanceId === result.instanceId && v.state === 'in-use')
    .map((v) => [v.device, v.sizeGib])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  assert.deepEqual(volumes, [
    ['/dev/sda1', 8],
    ['/dev/sdf', 9],
    ['/dev/sdg', 10],
  ]);
  assert.equal(state.instances.filter((i) => i.instanceId === result.instanceId).length, 1);
  assert.equal(result.dataVolumeIds?.length, 2);
  const status = await handle.query(vmStatusQuery);
  assert.deepEqual(
    status.dataVolumes?.map((d) => [d.disk, d.phase, d.bytesTotal]),
    [
      [1, 'Attached', tasksOf('disk-1/')[0]!.bytes],
      [2, 'Attached', tasksOf('disk-2/')[0]!.bytes],
    ],
    'each disk counted by the converted file it sent'
  );
  assert.deepEqual(await scratchFiles(), [], 'every converted image deleted from the scratch folder');
});

test('a scratch folder too small for the sum of the data disks refuses before any conversion, naming each', async () => {
  const boot = await makeImage(images, 'small-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 2 });
  // About 5 MiB of scratch each: either fits under the 8 MiB cap alone, both together do not.
  const a = await makeImage(images, 'small-a.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 4 });
  const b = await makeImage(images, 'small-b.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 4 });
  const handle = await start(input('short-scratch', boot, [a, b]), 'small');
  const err = await handle.result().then(
    () => assert.fail('the VM should fail'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as { type?: string; message: string };
  assert.equal(cause.type, 'ScratchSpaceShort', cause.message);
  assert.match(
    cause.message,
    /^VM short-scratch converts 2 disks on the site worker \(data disk 1 \(.*small-a\.qcow2\) 5 MiB, data disk 2 \(.*small-b\.qcow2\) 5 MiB\): up to 1\d MiB of scratch space in total/
  );
  assert.match(cause.message, /\(capped at 8 MiB\) has 8 MiB free\. Nothing was converted\./);
  assert.deepEqual(await scratchFiles(smallScratch), [], 'nothing converted, nothing left');
  const tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/short-scratch/`));
  assert.equal(tasks.length, 0, 'no conversion task');
  assert.deepEqual(await objectsOf('short-scratch'), [], 'nothing uploaded');
});

test('a dry run pre-flights every data disk and shows each as Checked; a bad data disk fails it, named', async () => {
  const boot = await makeImage(images, 'dry-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 2 });
  const qcow2 = await makeImage(images, 'dry-a.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 2 });
  const raw = await makeImage(images, 'dry-b.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
  const handle = await start(input('dry-ok', boot, [qcow2, raw], { dryRun: true }));
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');
  assert.equal(result.dryRun, true);
  const status = await handle.query(vmStatusQuery);
  assert.deepEqual(
    status.dataVolumes?.map((d) => [d.disk, d.device, d.source, d.phase]),
    [
      [1, '/dev/sdf', qcow2, 'Checked'],
      [2, '/dev/sdg', raw, 'Checked'],
    ]
  );
  // A data disk that is not what its name says: the dry run fails on it, naming the disk and its file.
  const bad = path.join(images, 'dry-bad.vhdx');
  await writeFile(bad, randomBytes(3 * 1024 + 17));
  const failing = await start(input('dry-bad', boot, [raw, bad], { dryRun: true }));
  const err = await failing.result().then(
    () => assert.fail('the dry run should fail'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.match((err.cause as Error).message, /^data disk 2 \(.*dry-bad\.vhdx\): /);
  const tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/dry-`));
  assert.equal(tasks.length, 0, 'a dry run imports nothing');
  assert.deepEqual([...(await objectsOf('dry-ok')), ...(await objectsOf('dry-bad'))], [], 'and uploads nothing');
  assert.deepEqual(await scratchFiles(), [], 'and converts nothing');
});

test('a data disk whose conversion AWS cancels is imported again (a new task), and the VM completes', async () => {
  const boot = await makeImage(images, 'again-boot.raw', 'raw', { virtualMiB: 16, randomMiB: 2 });
  const qcow2 = await makeImage(images, 'again-a.qcow2', 'qcow2', { virtualMiB: 9 * 1024, randomMiB: 3 });
  // Uploaded as it is (a RAW one of 10 GiB would be sent whole, hole and all).
  const vmdk = await makeImage(images, 'again-b.vmdk', 'stream-vmdk', { virtualMiB: 10 * 1024, randomMiB: 2 });
  const ofVm = (t: { manifestUrl: string }) => t.manifestUrl.includes(`/${batch}/interrupted/`);
  const handle = await start(input('interrupted', boot, [qcow2, vmdk], { conversionRetries: 2 }));
  try {
    // The boot disk's conversion has begun (its outcome decided) before AWS starts cancelling: only data disks are hit.
    await until(
      async () => (await sim.state()).tasks.find((t) => t.manifestUrl.includes(`/${batch}/interrupted/manifest.xml`)),
      (t) => t !== undefined && (t.bytesConverted > 0 || t.state === 'completed'),
      { timeoutMs: 120_000, intervalMs: 50 }
    );
    await sim.configure({ faults: { awsCancelRate: 1 } });
    await until(
      async () =>
        (await sim.state()).tasks.filter((t) => ofVm(t) && t.manifestUrl.includes('/disk-') && t.state === 'cancelled'),
      (cancelled) => cancelled.length >= 1,
      { timeoutMs: 120_000, intervalMs: 50 }
    );
  } finally {
    await sim.configure({ faults: { awsCancelRate: 0 } });
  }
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');

  const state = await sim.state();
  const tasks = state.tasks.filter(ofVm);
  assert.equal(tasks.filter((t) => !t.manifestUrl.includes('/disk-')).length, 1, 'the boot disk imported once');
  let reimported = 0;
  for (const disk of [1, 2]) {
    const mine = tasks.filter((t) => t.manifestUrl.includes(`/interrupted/disk-${disk}/manifest.xml`));
    const cancelled = mine.filter((t) => t.state === 'cancelled');
    assert.equal(mine.filter((t) => t.state === 'completed').length, 1, `data disk ${disk}: one completed task`);
    assert.equal(mine.length, cancelled.length + 1, `data disk ${disk}: a task per AWS cancellation, then one`);
    for (const t of cancelled) assert.match(t.statusMessage, /AWS initiated task cancellation/);
    reimported += cancelled.length;
  }
  assert.ok(reimported >= 1, 'AWS cancelled at least one data disk conversion');
  const volumes = state.volumes as unknown as Array<{
    volumeId: string;
    instanceId?: string;
    state: string;
    device?: string;
    sizeGib: number;
  }>;
  assert.deepEqual(
    volumes
      .filter((v) => v.instanceId === result.instanceId && v.state === 'in-use')
      .map((v) => [v.device, v.sizeGib])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ['/dev/sda1', 8],
      ['/dev/sdf', 9],
      ['/dev/sdg', 10],
    ]
  );
  const attached = new Set(result.dataVolumeIds);
  for (const t of tasks.filter((x) => x.state === 'cancelled'))
    assert.equal(attached.has(t.volumeId), false, 'a cancelled task’s volume is not the one attached');
  assert.deepEqual(await scratchFiles(), [], 'the converted data disk deleted from the scratch folder');
});
