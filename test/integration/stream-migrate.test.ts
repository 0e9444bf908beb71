/**
 * A RAW disk migrates end to end (real Temporal, S3 server, simulator judging the guest it finds in the
 * uploaded file) sent as the stream-optimized VMDK made on the fly: ImportInstance's Image.Bytes is the
 * uploaded object's length, fewer bytes than the RAW file, and the simulator (qemu-img, then its guest
 * checks) finds the Ubuntu guest in it. A row with upload_format=as-is sends the RAW file byte for byte.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';

const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * 1024 * 1024,
  uploadConcurrency: 3,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  importListingWaitSeconds: 10,
  deadlineSeconds: 600,
};

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let dir: { dir: string; remove(): Promise<void> };
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
const batch = `stream-${Date.now().toString(36)}`;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      judgeContent: true,
      config: { speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 } },
    }),
    tempDir('vmconvoy-stream-migrate-'),
  ]);
  proxy = await startCountingProxy(s3.endpoint);
  taskQueue = uniqueTaskQueue('stream-migrate');
  worker = await Worker.create({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities({ config: { ...localAwsConfig(s3, sim), s3Endpoint: proxy.endpoint } }),
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop()]);
  await dir?.remove();
  await temporal?.stop();
});

async function migrate(name: string, image: string, row: Record<string, unknown> = {}): Promise<MigrateVmResult> {
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({ name, image, architecture: 'x86_64', instanceType: 't2.medium', ...row }),
    settings: SETTINGS,
  };
  const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `${batch}/${name}`,
    args: [input],
  });
  return (await handle.result()) as MigrateVmResult;
}

test('a RAW Ubuntu disk is sent stream-optimized: Image.Bytes is the object uploaded, smaller than the disk, and the guest is found in it', async () => {
  const raw = await makeGuestImage(dir.dir, 'ubuntu.raw', GUESTS.ubuntu2204, 'raw', { sizeMiB: 320, payloadMiB: 4 });
  const rawBytes = (await stat(raw)).size;
  proxy.reset();
  const result = await migrate('ubuntu-stream', raw);
  assert.equal(result.phase, 'Completed');
  const state = await sim.state();
  const task = state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/ubuntu-stream/manifest.xml`));
  assert.equal(task.length, 1);
  const sent = proxy.putBytes(/ubuntu-stream\/image\.part/);
  assert.equal(task[0]!.bytes, sent, 'Image.Bytes = the bytes of the object the parts make up');
  assert.equal(result.bytesUploaded, sent);
  assert.ok(sent < rawBytes / 4, `${sent} bytes sent for a ${rawBytes}-byte RAW disk`);
  assert.equal(state.instances.find((i) => i.instanceId === result.instanceId)?.state, 'stopped');
});

test('upload_format=as-is sends the RAW disk byte for byte', async () => {
  const raw = await makeGuestImage(dir.dir, 'ubuntu-as-is.raw', GUESTS.ubuntu2204, 'raw', { sizeMiB: 320 });
  const rawBytes = (await stat(raw)).size;
  proxy.reset();
  const result = await migrate('ubuntu-as-is', raw, { uploadFormat: 'as-is' });
  assert.equal(result.phase, 'Completed');
  const task = (await sim.state()).tasks.find((t) => t.manifestUrl.includes(`/${batch}/ubuntu-as-is/manifest.xml`))!;
  assert.equal(task.bytes, rawBytes);
  assert.equal(proxy.putBytes(/ubuntu-as-is\/image\.part/), rawBytes);
});
