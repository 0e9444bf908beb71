/**
 * Formats EC2 does not take as they are, end to end through the test bed (real Temporal, S3 server,
 * simulator, real activities): qcow2, VHDX, monolithicSparse and flat VMDK images are converted on the
 * site worker into a stream-optimized VMDK and migrate; an OVA's disk is uploaded from its byte range; a
 * scratch folder too small refuses before converting; the scratch folder is emptied when the VM ends,
 * cancelled included.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { vmPrefix } from '../../common/object-keys';
import { vmStatusQuery } from '../../workflows/messages';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import type { ImageKind } from '../helpers/images';
import { RANDOM_IMAGE_ROW, makeImage } from '../helpers/images';
import { makeOva } from '../helpers/ova';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import type { MigrationBed } from '../helpers/migration-bed';
import { QUICK_CONVERSIONS, startMigrationBed } from '../helpers/migration-bed';
import { until } from '../helpers/wait';

const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * 1024 * 1024,
  uploadConcurrency: 3,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  importListingWaitSeconds: 10,
  deadlineSeconds: 600,
};

let bed: MigrationBed;
let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let dir: { dir: string };
let images: string;
let scratch: string;
let tinyScratch: string;
const queues = { roomy: '', tiny: '' };
const batch = `fmt-${Date.now().toString(36)}`;

before(async () => {
  bed = await startMigrationBed('formats', { sim: { config: { speed: QUICK_CONVERSIONS } } });
  ({ temporal, s3, sim, images, scratch } = bed);
  dir = { dir: bed.dir };
  tinyScratch = path.join(bed.dir, 'tiny-scratch');
  await mkdir(tinyScratch);
  // The cancelled VM's parts are slowed, so it is still uploading when it is cancelled.
  proxy = await startCountingProxy(s3.endpoint, { putDelayMs: 1500, slowPuts: /cancelled-qcow2\/image\.part/ });
  const config = { ...bed.aws, s3Endpoint: proxy.endpoint };
  // Two workers: one with room to convert, one whose scratch folder is capped at 1 MiB.
  queues.roomy = await bed.worker('roomy', { config });
  queues.tiny = await bed.worker('tiny', { config, scratch: { dir: tinyScratch, capBytes: 1024 * 1024 } });
});

after(async () => {
  await proxy?.close();
  await bed?.stop();
});

async function start(name: string, image: string, queue: 'roomy' | 'tiny' = 'roomy', format?: string) {
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      name,
      image,
      format,
      architecture: 'x86_64',
      instanceType: 't2.medium',
      ...RANDOM_IMAGE_ROW,
    }),
    settings: SETTINGS,
  };
  return temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue: queues[queue],
    workflowId: `${batch}/${name}`,
    args: [input],
  });
}

/** Everything left under the scratch folder (files, recursively). */
async function scratchFiles(folder = scratch): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

async function objectsOf(vm: string): Promise<string[]> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
}

/** The stream-optimized VMDK qemu-img makes of `image`: what the upload must have sent. */
function streamVmdkBytes(image: string, format: string): number {
  const out = path.join(dir.dir, `${path.basename(image)}.expected.vmdk`);
  execFileSync('qemu-img', ['convert', '-f', format, '-O', 'vmdk', '-o', 'subformat=streamOptimized', image, out]);
  return Number(execFileSync('stat', ['-c', '%s', out]).toString().trim());
}

test('qcow2, VHDX, monolithicSparse and flat VMDK images are converted on the site and migrate; the scratch folder ends empty', async () => {
  const kinds: Array<[string, ImageKind | 'flat-vmdk', string]> = [
    ['kvm-qcow2', 'qcow2', 'qcow2'],
    ['hyperv-vhdx', 'vhdx', 'vhdx'],
    ['ws-sparse', 'sparse-vmdk', 'vmdk'],
    ['esx-flat', 'flat-vmdk', 'vmdk'],
  ];
  const made = await Promise.all(
    kinds.map(async ([name, kind, qemuFormat]) => {
      if (kind !== 'flat-vmdk')
        return makeImage(images, `${name}.${qemuFormat}`, kind, { virtualMiB: 24, randomMiB: 6 });
      const raw = await makeImage(images, `${name}-src.raw`, 'raw', { virtualMiB: 24, randomMiB: 6 });
      const file = path.join(images, `${name}.vmdk`);
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', raw, file]);
      return file;
    })
  );
  const handles = await Promise.all(kinds.map(([name], i) => start(name, made[i]!)));
  const results = (await Promise.all(handles.map((h) => h.result()))) as MigrateVmResult[];
  const state = await sim.state();
  for (const [i, [name, , qemuFormat]] of kinds.entries()) {
    const result = results[i]!;
    assert.equal(result.phase, 'Completed', name);
    const task = state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${name}/manifest.xml`));
    assert.equal(task.length, 1, `one conversion task for ${name}`);
    // EC2 was given the converted file: as many bytes as qemu-img's own conversion makes.
    assert.equal(task[0]!.bytes, streamVmdkBytes(made[i]!, qemuFormat), `${name}: the stream VMDK was uploaded`);
    assert.equal(result.bytesUploaded, task[0]!.bytes, name);
    assert.equal(state.instances.find((x) => x.instanceId === result.instanceId)?.state, 'stopped');
    // Parts and manifest gone; the record of what was created stays (vmconvoy rollback reads it).
    assert.deepEqual(await objectsOf(name), ['resources.json'], `${name}: only the record left`);
    assert.equal((await handles[i]!.query(vmStatusQuery)).bytesTotal, task[0]!.bytes);
  }
  assert.deepEqual(await scratchFiles(), [], 'every converted image deleted');
});

test('an OVA with one stream-optimized disk migrates, its disk uploaded straight from its byte range', async () => {
  const disk = await makeImage(images, 'ova-disk1.vmdk', 'stream-vmdk', { virtualMiB: 24, randomMiB: 6 });
  const ova = await makeOva(images, 'exported', {
    disks: [disk],
    vmwOsType: 'ubuntu64Guest',
    cpus: 2,
    memoryMiB: 2048,
  });
  const handle = await start('vsphere-ova', ova, 'roomy', 'OVA');
  const result = (await handle.result()) as MigrateVmResult;
  assert.equal(result.phase, 'Completed');
  const task = (await sim.state()).tasks.find((t) => t.manifestUrl.includes(`/${batch}/vsphere-ova/manifest.xml`))!;
  const diskBytes = (await stat(disk)).size;
  assert.equal(task.bytes, diskBytes, 'Image.Bytes is the disk, not the OVA');
  assert.equal(result.bytesUploaded, diskBytes);
  assert.ok((await stat(ova)).size > diskBytes);
  assert.deepEqual(await scratchFiles(), [], 'an OVA is not copied to the scratch folder');
});

test('a scratch folder too small refuses before converting, naming the folder, what is needed and what is free', async () => {
  const image = await makeImage(images, 'big.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 8 });
  const handle = await start('too-big-for-scratch', image, 'tiny');
  const err = await handle.result().then(
    () => assert.fail('the VM should fail'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as { type?: string; message: string };
  assert.equal(cause.type, 'ScratchSpaceShort');
  assert.match(
    cause.message,
    new RegExp(`The scratch folder ${tinyScratch.replace(/[/.]/g, '\\$&')} \\(capped at 1 MiB\\)`)
  );
  assert.match(cause.message, /has 1 MiB free for this conversion, but it needs up to [89] MiB/);
  assert.deepEqual(await scratchFiles(tinyScratch), [], 'nothing was converted, nothing left');
  assert.equal((await sim.state()).tasks.filter((t) => t.manifestUrl.includes('too-big-for-scratch')).length, 0);
});

test('a VM cancelled after its conversion, during the upload, leaves no converted image behind', async () => {
  const image = await makeImage(images, 'cancelled.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 12 });
  const handle = await start('cancelled-qcow2', image);
  // The converted image exists once the upload has started.
  await until(
    () => scratchFiles(),
    (files) => files.some((f) => f.endsWith('disk.vmdk')),
    {
      timeoutMs: 60_000,
      intervalMs: 100,
    }
  );
  await handle.cancel();
  await handle.result().catch(() => undefined);
  assert.equal((await handle.query(vmStatusQuery)).phase, 'Cancelled');
  assert.deepEqual(await scratchFiles(), [], 'scratch emptied on cancel');
  assert.deepEqual(await objectsOf('cancelled-qcow2'), []);
});
