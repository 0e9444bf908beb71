/**
 * Hostile images through the real migrateVmWorkflow (issue #7, item 3): the real Temporal server, the real
 * S3 server behind a proxy that counts every PUT at the wire, the EC2 simulator and the real activities.
 * Each image must fail the VM at pre-flight with its own failure type and a message naming the file, and
 * nothing may be uploaded or imported: no PUT reaches S3, no object is left under the VM's prefix, the
 * simulator never sees an ImportInstance.
 *
 * All VMs start at once in `before` (each fails within a second or two); one test per image then checks
 * its outcome, so a failing case is reported by name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { createWorkers } from '../../worker/create-worker';
import { vmStatusQuery } from '../../workflows/messages';
import type { MigrateVmInput, MigrationSettings, VmSpecInput, VmStatus } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { vmPrefix } from '../../common/object-keys';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage, rewriteVhdFooters, RANDOM_IMAGE_ROW } from '../helpers/images';
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
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  deadlineSeconds: 600,
};

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: { dir: string; remove(): Promise<void> };
let workers: Worker[] = [];
let workerRuns: Array<Promise<void>> = [];
const batch = `hostile-${Date.now().toString(36)}`;

interface HostileCase {
  vm: string;
  /** Makes the hostile file; returns the path the inventory gives. */
  make(dir: string, root: string): Promise<string>;
  spec?: Partial<VmSpecInput>;
  /** Run pre-flight on the site worker, whose VMCONVOY image roots are `<dir>/root`. */
  onSite?: boolean;
  type: string;
  message: RegExp;
}

const CASES: HostileCase[] = [
  {
    vm: 'truncated-stream-vmdk',
    make: async (dir) => {
      const file = await makeImage(dir, 'truncated.vmdk', 'stream-vmdk', { virtualMiB: 16, randomMiB: 4 });
      const { size } = await stat(file);
      await truncate(file, Math.floor(size / 2 / 512) * 512);
      return file;
    },
    type: 'ImageUnreadable',
    message: /is damaged or incomplete: the stream VMDK is truncated/,
  },
  {
    vm: 'wrong-magic',
    make: async (dir) => {
      const bytes = randomBytes(4 * 1024 * 1024);
      bytes.write('RND!', 0, 'latin1');
      const file = path.join(dir, 'wrong-magic.vmdk');
      await writeFile(file, bytes);
      return file;
    },
    spec: { format: 'VMDK' },
    type: 'ImageFormatMismatch',
    message: /is declared as VMDK in the inventory but has no VMDK header: expected "KDMV" at offset 0, found "RND!"/,
  },
  {
    vm: 'garbage-vmdk-header',
    make: async (dir) => {
      const bytes = randomBytes(1024 * 1024);
      bytes.write('KDMV', 0, 'latin1');
      bytes.writeUInt32LE(0xdeadbeef, 4);
      const file = path.join(dir, 'garbage.vmdk');
      await writeFile(file, bytes);
      return file;
    },
    type: 'ImageUnreadable',
    message: /its VMDK header is not valid: version 3735928559/,
  },
  {
    vm: 'fixed-vhd-claims-1tib',
    make: async (dir) => {
      const file = await makeImage(dir, 'fixed-1t.vhd', 'fixed-vhd', { virtualMiB: 8, randomMiB: 1 });
      await rewriteVhdFooters(file, (footer) => footer.writeBigUInt64BE(1n << 40n, 48));
      return file;
    },
    type: 'ImageUnreadable',
    message: /the fixed VHD holds 8388608 data bytes but its footer says 1099511627776/,
  },
  {
    vm: 'dynamic-vhd-claims-4tib',
    make: async (dir) => {
      const file = await makeImage(dir, 'dynamic-4t.vhd', 'dynamic-vhd', { virtualMiB: 8, randomMiB: 1 });
      await rewriteVhdFooters(file, (footer) => footer.writeBigUInt64BE(1n << 42n, 48));
      return file;
    },
    type: 'ImageUnreadable',
    message: /its footer claims a 4096 GiB disk, more than the 2040 GiB a VHD can hold/,
  },
  {
    vm: 'symlink-escapes-roots',
    // A good image: only the way it is reached is wrong.
    make: async (dir, root) => {
      const outside = await makeImage(dir, 'outside.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
      const link = path.join(root, 'escape.raw');
      await symlink(outside, link);
      return link;
    },
    onSite: true,
    type: 'ImageOutsideRoots',
    message: /\(it resolves to \S+outside\.raw\) is outside the allowed image roots/,
  },
  {
    vm: 'dev-zero',
    make: () => Promise.resolve('/dev/zero'),
    type: 'ImageUnreadable',
    message: /is a device, not a regular file/,
  },
  {
    vm: 'fifo',
    make: (dir) => {
      const fifo = path.join(dir, 'pipe.vmdk');
      execFileSync('mkfifo', [fifo]);
      return Promise.resolve(fifo);
    },
    type: 'ImageUnreadable',
    message: /is a FIFO \(named pipe\), not a regular file/,
  },
  {
    vm: 'directory',
    make: async (dir) => {
      const folder = path.join(dir, 'a-folder.vmdk');
      await mkdir(folder);
      return folder;
    },
    type: 'ImageUnreadable',
    message: /is a directory, not a regular file/,
  },
  {
    vm: 'dangling-symlink',
    make: async (dir, root) => {
      const link = path.join(root, 'dangling.vmdk');
      await symlink(path.join(dir, 'moved-away.vmdk'), link);
      return link;
    },
    onSite: true,
    type: 'ImageNotFound',
    message: /is a symbolic link to \S+moved-away\.vmdk, which does not exist/,
  },
  {
    vm: 'symlink-loop',
    make: async (_dir, root) => {
      const [a, b] = [path.join(root, 'loop-a.vmdk'), path.join(root, 'loop-b.vmdk')];
      await symlink(b, a);
      await symlink(a, b);
      return a;
    },
    onSite: true,
    type: 'ImageUnreadable',
    message: /is a symbolic link that loops back on itself/,
  },
];

interface Outcome {
  image: string;
  handle: WorkflowHandle;
  error: unknown;
}
const outcomes = new Map<string, Promise<Outcome>>();

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim(),
    tempDir('vmconvoy-hostile-'),
  ]);
  proxy = await startCountingProxy(s3.endpoint);
  const aws = { ...localAwsConfig(s3, sim), s3Endpoint: proxy.endpoint };
  const taskQueue = uniqueTaskQueue('hostile-images');
  const siteQueue = uniqueTaskQueue('hostile-images-site');
  const root = path.join(images.dir, 'root');
  await mkdir(root);
  const bundle = await workflowBundle();
  const connection = { connection: temporal.nativeConnection, namespace: temporal.namespace, aws };
  workers = [
    // Reads images anywhere (no roots), like a worker without VMCONVOY_IMAGE_ROOTS.
    ...(await createWorkers({ ...connection, taskQueue, workflowBundle: bundle })),
    // A site worker restricted to VMCONVOY_IMAGE_ROOTS=<dir>/root: pre-flight and upload only.
    ...(await createWorkers({
      ...connection,
      taskQueue,
      uploadTaskQueue: siteQueue,
      uploadOnly: true,
      imageRoots: [root],
    })),
  ];
  workerRuns = workers.map((w) => w.run());

  for (const c of CASES) {
    const image = await c.make(images.dir, root);
    const input: MigrateVmInput = {
      batch,
      spec: vmSpecSchema.parse({
        ...RANDOM_IMAGE_ROW,
        name: c.vm,
        image,
        architecture: 'x86_64',
        instanceType: 't2.medium',
        ...c.spec,
      }),
      settings: { ...SETTINGS, uploadTaskQueue: c.onSite ? siteQueue : undefined },
    };
    const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
      taskQueue,
      workflowId: `${batch}/${c.vm}`,
      args: [input],
    });
    outcomes.set(
      c.vm,
      handle.result().then(
        () => ({ image, handle, error: undefined }),
        (error: unknown) => ({ image, handle, error })
      )
    );
  }
});

after(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(workerRuns);
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), images?.remove()]);
  await temporal?.stop();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

/** The activities the workflow scheduled, in order, from its history. */
async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return name ? [name] : [];
  });
}

for (const c of CASES) {
  test(`${c.vm}: refused at pre-flight as ${c.type}, nothing uploaded, nothing imported`, async () => {
    const { image, handle, error } = await outcomes.get(c.vm)!;

    assert.ok(error instanceof WorkflowFailedError, `the VM should have failed, got ${String(error)}`);
    const cause = error.cause;
    assert.ok(cause instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(cause)}`);
    assert.equal(cause.type, c.type, cause.message);
    assert.ok(cause.message.startsWith(`Disk image ${image} `), `the message names the file: ${cause.message}`);
    assert.match(cause.message, c.message);

    // Failed at pre-flight: its status never got past it, and the only other activity was the cleanup.
    const status: VmStatus = await handle.query(vmStatusQuery);
    assert.equal(status.phase, 'Failed');
    assert.deepEqual(status.lastError, { type: c.type, message: cause.message });
    assert.equal(status.bytesTotal, 0);
    assert.equal(status.bytesUploaded, 0);
    assert.equal(status.conversionTaskId, undefined);
    assert.deepEqual(await scheduledActivities(handle), ['preflightImage', 'cleanupVm']);

    // The VM's own folder, as the workers name it (with the Temporal namespace): a hand-built prefix that
    // missed the namespace segment would list nothing and pass on any bucket.
    assert.deepEqual(await keysUnder(vmPrefix('vmconvoy/', { batch, vm: c.vm, namespace: temporal.namespace })), []);
    assert.deepEqual(
      (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${c.vm}/`)),
      []
    );
  });
}

// Runs last: across every VM above, not a byte went to S3 and EC2 saw no import.
test('no PUT reached S3, the bucket is empty and the simulator has no conversion task', async () => {
  await Promise.all(outcomes.values());
  assert.equal(proxy.putCount(), 0, 'PUT requests to S3');
  assert.equal(proxy.putBytes(), 0, 'bytes PUT to S3');
  assert.deepEqual(await keysUnder(''), []);
  const state = await sim.state();
  assert.deepEqual(state.tasks, []);
  assert.equal(state.calls.ImportInstance ?? 0, 0);
});
