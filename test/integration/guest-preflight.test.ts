/**
 * The workflow's pre-flight enforces the launch rules and the look inside the guest whatever the CLI saw:
 * real Temporal, the real S3 server behind a proxy that counts what crosses the wire, the EC2 simulator
 * judging images by content, the real worker. A refused VM uploads 0 bytes and creates no conversion task;
 * a guest with a warning is uploaded and converted, and its inspection is in the status, the report and the
 * Web UI's details.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { batchView } from '../../client/batch-view';
import { reportRows } from '../../client/commands/report';
import { statusJson } from '../../client/batch-view';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { FailureType } from '../../common/failures';
import { vmPrefix } from '../../common/object-keys';
import { createWorkers } from '../../worker/create-worker';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import { UBUNTU2204_RELEASE, linuxRoot, makeDisk } from '../helpers/guest-images-more';
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
import { until } from '../helpers/wait';

const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 5 * 1024 * 1024,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  importListingWaitSeconds: 10,
  deadlineSeconds: 600,
};
/** Big enough for VM Import's 250 MiB of free space. */
const ROOMY = 320;

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: { dir: string; remove(): Promise<void> };
let worker: Worker;
let workerRun: Promise<void>;
let taskQueue: string;
const batch = `guest-${Date.now().toString(36)}`;

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      judgeContent: true,
      config: { speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 } },
    }),
    tempDir('vmconvoy-guest-preflight-'),
  ]);
  proxy = await startCountingProxy(s3.endpoint);
  taskQueue = uniqueTaskQueue('guest-preflight');
  const workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws: { ...localAwsConfig(s3, sim), s3Endpoint: proxy.endpoint },
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

async function run(name: string, image: string, row: Record<string, unknown> = {}) {
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
  return { handle, result: handle.result() as Promise<MigrateVmResult> };
}

/** What reached S3 and EC2 for a VM: bytes PUT under its prefix, objects left, conversion tasks created. */
async function footprint(vm: string): Promise<{ bytes: number; objects: number; tasks: number }> {
  const prefix = vmPrefix('vmconvoy/', { batch, vm, namespace: temporal.namespace });
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  const tasks = (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${vm}/`));
  return { bytes: proxy.putBytes(new RegExp(`/${vm}/`)), objects: listed.KeyCount ?? 0, tasks: tasks.length };
}

async function failure(result: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const err = await result.then(
    () => assert.fail('the VM should have failed'),
    (e: unknown) => e
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as { type?: string; message: string };
  return { type: cause.type, message: cause.message };
}

describe('refused before any upload', () => {
  test('CentOS 4 (kernel 2.6.9): GuestRefused naming the kernel; 0 bytes uploaded, no task; status and report say why', async () => {
    const image = await makeGuestImage(images.dir, 'centos4.vmdk', GUESTS.centos4, 'stream-vmdk', { sizeMiB: ROOMY });
    const { result } = await run('centos4', image);
    const f = await failure(result);
    assert.equal(f.type, FailureType.GuestRefused);
    assert.match(f.message, /Unsupported kernel version 2\.6\.9-103\.EL.*\[rule linux-kernel\]/);
    assert.deepEqual(await footprint('centos4'), { bytes: 0, objects: 0, tasks: 0 });

    const vm = await until(
      async () => (await batchView(temporal.client, batch)).vms.find((v) => v.name === 'centos4'),
      (v) => v?.inspection !== undefined && v.inspection !== null
    );
    assert.equal(vm!.inspection!.verdict, 'refuse');
    assert.equal(vm!.inspection!.os, 'CentOS release 4.9 (Final)');
    const [row] = reportRows([vm!]);
    assert.equal(row!.inspection, 'refuse');
    assert.match(String(row!.inspection_reasons), /refuse linux-kernel: Unsupported kernel version 2\.6\.9/);
    assert.match(String(row!.guest), /CentOS release 4\.9 \(Final\), kernel 2\.6\.9-103\.EL, ext3/);
  });

  test('a Linux row on m5.large: LaunchRuleViolated with the nearest type; 0 bytes, no task', async () => {
    const image = await makeGuestImage(images.dir, 'ubuntu.vmdk', GUESTS.ubuntu2204, 'stream-vmdk', {
      sizeMiB: ROOMY,
    });
    const { result } = await run('m5-linux', image, { instanceType: 'm5.large' });
    const f = await failure(result);
    assert.equal(f.type, FailureType.LaunchRuleViolated);
    assert.match(f.message, /m3\.large/);
    assert.deepEqual(await footprint('m5-linux'), { bytes: 0, objects: 0, tasks: 0 });
  });
});

describe('a warning is shown and stored, and the upload goes on', () => {
  test('fstab by device name: uploaded, converted, the inspection in the result, status, report and details', async () => {
    const root = linuxRoot({
      osRelease: UBUNTU2204_RELEASE,
      kernel: '5.15.0-91-generic',
      fstab: '/dev/sda1 / ext4 defaults 0 1\n',
    });
    const image = await makeDisk(
      images.dir,
      'bydevice.vmdk',
      { sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...root }] },
      'stream-vmdk'
    );
    const { handle, result } = await run('bydevice', image);
    const done = await result;
    assert.equal(done.inspection?.verdict, 'warn');
    assert.deepEqual(
      done.inspection?.reasons.map((r) => r.rule),
      ['fstab-device-names']
    );
    assert.ok((await footprint('bydevice')).bytes > 0, 'the upload went on');

    // The Web UI's details (the workflow's current details).
    const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(meta.currentDetails ?? '', /guest inspection: \*\*warn\*\* \(Ubuntu 22\.04\.4 LTS, kernel 5\.15/);
    assert.match(meta.currentDetails ?? '', /warn \(fstab-device-names\)/);

    const view = await until(
      () => batchView(temporal.client, batch),
      (v) => v.vms.some((x) => x.name === 'bydevice' && x.phase === 'Completed')
    );
    const json = statusJson(view).vms.find((v) => v.name === 'bydevice')!;
    assert.equal(json.inspection?.verdict, 'warn');
    const row = reportRows(view.vms).find((r) => r.name === 'bydevice')!;
    assert.equal(row.inspection, 'warn');
    assert.match(String(row.inspection_reasons), /warn fstab-device-names: .*\/dev\/sda1/);
    // No file contents in what the CLI shows.
    assert.doesNotMatch(JSON.stringify(view), /kernel image stand-in|menuentry/);
  });
});
