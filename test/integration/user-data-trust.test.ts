/**
 * An inventory can make the worker read no file it should not (issue 15, items 1 and 2), through the real
 * migrateVmWorkflow (real Temporal, real S3 server, the EC2 simulator, the real activities) and through
 * the activities themselves:
 * - user_data_file is opened as images are: inside the worker's image roots, a regular file checked on the
 *   open descriptor, never a kernel file, never a blocking FIFO, never more than 16 KiB + 1 byte read.
 *   fef23a8 read it with readFile: /proc/self/environ went to EC2 as the instance's user data (the worker's
 *   keys with it), /proc/self/pagemap grew the worker without end, a FIFO blocked a libuv thread for good.
 * - the upload refuses any other file than the one pre-flight read (ImageChanged), and the workflow hands
 *   pre-flight's device + inode to it; an input without them (a history from before) still uploads.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, open, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { readAtMost, sameFile } from '../../activities/open-within-roots';
import { readUserData } from '../../activities/user-data';
import { MAX_USER_DATA_BYTES } from '../../common/contracts/limits';
import type { MigrateVmInput, MigrationSettings, VmSpecInput } from '../../common/contracts/migration';
import type { UploadInput, UploadResult } from '../../common/contracts/activity-io';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { createWorkers } from '../../worker/create-worker';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
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
  partSizeBytes: 1024 * 1024,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  deadlineSeconds: 600,
};

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let tmp: { dir: string; remove(): Promise<void> };
let root: string;
let outside: string;
let workers: Worker[] = [];
let runs: Array<Promise<void>> = [];
const queues = { rooted: '', anyPath: '', swapSite: '' };
const batch = `trust-${Date.now().toString(36)}`;

before(async () => {
  [temporal, s3, sim, tmp] = await Promise.all([startTemporal(), startS3(), startSim(), tempDir('vmconvoy-trust-')]);
  root = path.join(tmp.dir, 'root');
  outside = path.join(tmp.dir, 'outside');
  await Promise.all([mkdir(root), mkdir(outside)]);
  const aws = localAwsConfig(s3, sim);
  const connection = { connection: temporal.nativeConnection, namespace: temporal.namespace, aws };
  const bundle = await workflowBundle();
  queues.rooted = uniqueTaskQueue('trust-rooted');
  queues.anyPath = uniqueTaskQueue('trust-any-path');
  queues.swapSite = uniqueTaskQueue('trust-swap-site');
  // A site worker whose upload replaces the image first: the moment between pre-flight and upload.
  const site = createActivities({ config: aws, imageRoots: [root] });
  workers = [
    ...(await createWorkers({ ...connection, taskQueue: queues.rooted, imageRoots: [root], workflowBundle: bundle })),
    // No roots: a library caller, or `vmconvoy worker --allow-any-path`.
    ...(await createWorkers({ ...connection, taskQueue: queues.anyPath, workflowBundle: bundle })),
    await Worker.create({
      connection: temporal.nativeConnection,
      namespace: temporal.namespace,
      taskQueue: queues.swapSite,
      activities: {
        preflightImage: site.preflightImage,
        uploadImage: async (input: UploadInput) => {
          await replaceWithSameSizeCopy(input.image);
          return site.uploadImage(input);
        },
      },
    }),
  ];
  runs = workers.map((w) => w.run());
});

after(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(runs);
  await Promise.all([sim?.stop(), s3?.stop(), tmp?.remove()]);
  await temporal?.stop();
});

/** Same bytes, same size, another inode: what a tool that rewrites a file and renames it over leaves. */
async function replaceWithSameSizeCopy(file: string): Promise<void> {
  const copy = `${file}.new`;
  await copyFile(file, copy);
  await rename(copy, file);
}

async function startVm(vm: string, taskQueue: string, spec: Partial<VmSpecInput>, settings = {}) {
  const image = await makeImage(root, `${vm}.raw`, 'raw', { virtualMiB: 2, randomMiB: 1 });
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name: vm,
      image,
      architecture: 'x86_64',
      instanceType: 't2.medium',
      ...spec,
    }),
    settings: { ...SETTINGS, ...settings },
  };
  const handle = await temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `${batch}/${vm}`,
    args: [input],
  });
  return { image, handle };
}

async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const error = await handle.result().then(
    () => undefined,
    (err: unknown) => err
  );
  assert.ok(error instanceof WorkflowFailedError, `the VM should have failed, got ${String(error)}`);
  assert.ok(error.cause instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error.cause)}`);
  return error.cause;
}

async function tasksOf(vm: string) {
  return (await sim.state()).tasks.filter((t) => t.manifestUrl.includes(`/${batch}/${vm}/`));
}

/** Activity inputs the workflow scheduled, by activity name, decoded from its history. */
async function scheduledInputs(handle: WorkflowHandle, activity: string): Promise<unknown[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== activity) return [];
    const data = a.input?.payloads?.[0]?.data;
    return data ? [JSON.parse(Buffer.from(data).toString('utf8')) as unknown] : [];
  });
}

describe('user_data_file through the workflow: refused before ImportInstance, as UserDataInvalid', () => {
  const cases: Array<{ vm: string; queue: keyof typeof queues; file: () => Promise<string>; message: RegExp }> = [
    {
      vm: 'environ-rooted',
      queue: 'rooted',
      file: () => Promise.resolve('/proc/self/environ'),
      message:
        /^User data file \/proc\/self\/environ \(it resolves to \/proc\/\d+\/environ\) is outside the allowed image roots/,
    },
    {
      vm: 'environ-any-path',
      queue: 'anyPath',
      file: () => Promise.resolve('/proc/self/environ'),
      message:
        /^User data file \/proc\/self\/environ \(\/proc\/\d+\/environ\) is a file of the kernel's procfs, not user data/,
    },
    {
      vm: 'pagemap-any-path',
      queue: 'anyPath',
      file: () => Promise.resolve('/proc/self/pagemap'),
      message: /is a file of the kernel's procfs/,
    },
    {
      vm: 'fifo',
      queue: 'rooted',
      file: () => {
        const fifo = path.join(root, 'user-data.fifo');
        execFileSync('mkfifo', [fifo]);
        return Promise.resolve(fifo);
      },
      message: /is a FIFO \(named pipe\), not a regular file/,
    },
    {
      vm: 'symlink-out',
      queue: 'rooted',
      file: async () => {
        const secret = path.join(outside, 'credentials');
        await writeFile(secret, 'aws_secret_access_key = not-for-ec2\n');
        await symlink(secret, path.join(root, 'user-data.sh'));
        return path.join(root, 'user-data.sh');
      },
      message:
        /\(it resolves to \S+outside\/credentials\) is outside the allowed image roots .*Move the file under one of them, or add its folder to VMCONVOY_IMAGE_ROOTS/,
    },
    {
      vm: 'too-large',
      queue: 'rooted',
      file: async () => {
        const big = path.join(root, 'big-user-data.sh');
        await writeFile(big, Buffer.alloc(MAX_USER_DATA_BYTES + 1, 0x41));
        return big;
      },
      message: /is larger than 16384 bytes, the most EC2 accepts/,
    },
  ];
  const started = new Map<string, Promise<{ handle: WorkflowHandle }>>();
  before(() => {
    for (const c of cases)
      started.set(
        c.vm,
        c.file().then((file) => startVm(c.vm, queues[c.queue], { userDataFile: file }))
      );
  });

  for (const c of cases) {
    test(`${c.vm}: UserDataInvalid naming what to fix; EC2 never asked to import it`, async () => {
      const { handle } = await started.get(c.vm)!;
      const failure = await failureOf(handle);
      assert.equal(failure.type, 'UserDataInvalid', failure.message);
      assert.equal(failure.nonRetryable, true);
      assert.match(failure.message, c.message);
      // The file was refused inside importInstance, before anything was sent: no task, so no instance
      // holding it as user data.
      assert.deepEqual(await tasksOf(c.vm), []);
    });
  }

  test('a user-data file inside the roots is sent, and the VM completes', async () => {
    const file = path.join(root, 'cloud-init.sh');
    await writeFile(file, '#!/bin/sh\necho hello\n');
    const { handle } = await startVm('good-user-data', queues.rooted, { userDataFile: file });
    const result = (await handle.result()) as { phase: string };
    assert.equal(result.phase, 'Completed');
    assert.equal((await tasksOf('good-user-data')).length, 1);
  });
});

describe('readUserData: bounded, non-blocking, whatever the file claims', () => {
  test(
    'four FIFOs at once each fail in under 2 s (fef23a8 blocked a libuv thread on each, for good)',
    { timeout: 10_000 },
    async () => {
      const fifos = [1, 2, 3, 4].map((i) => path.join(tmp.dir, `pipe-${i}`));
      for (const f of fifos) execFileSync('mkfifo', [f]);
      const t0 = Date.now();
      const outcomes = await Promise.all(fifos.map((f) => readUserData(f).then(String, (err: unknown) => err)));
      assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
      for (const o of outcomes) {
        assert.ok(o instanceof ApplicationFailure && o.type === 'UserDataInvalid', String(o));
        assert.match(o.message, /FIFO/);
      }
    }
  );

  test('an endless file of size 0 (/proc/self/pagemap) is read no further than the bound', async () => {
    const handle = await open('/proc/self/pagemap', 'r');
    try {
      assert.equal((await handle.stat()).size, 0, 'procfs says 0 bytes');
      const rssBefore = process.memoryUsage().rss;
      // pagemap reads in 8-byte entries (EINVAL otherwise): a bound of 2 × 16 KiB here.
      const bytes = await readAtMost(handle, 2 * MAX_USER_DATA_BYTES);
      assert.equal(bytes.length, 2 * MAX_USER_DATA_BYTES);
      assert.ok(process.memoryUsage().rss - rssBefore < 32 * 1024 * 1024, 'no unbounded read');
    } finally {
      await handle.close();
    }
  });

  test('exactly 16 KiB is accepted and sent as it is; devices and folders are refused', async () => {
    const file = path.join(root, 'exactly-16k.sh');
    const data = Buffer.alloc(MAX_USER_DATA_BYTES, 0x42);
    await writeFile(file, data);
    assert.equal(await readUserData(file, [root]), data.toString('base64'));
    await assert.rejects(readUserData('/dev/zero'), (e: ApplicationFailure) => /is a device/.test(e.message));
    await assert.rejects(readUserData(root), (e: ApplicationFailure) => /is a directory/.test(e.message));
    await assert.rejects(readUserData('relative.sh'), (e: ApplicationFailure) => /is not absolute/.test(e.message));
  });
});

describe('the upload opens the file pre-flight read, or none', () => {
  test('the workflow hands pre-flight device + inode to the upload', async () => {
    const { image, handle } = await startVm('identity-passed', queues.rooted, {});
    await handle.result();
    const inputs = (await scheduledInputs(handle, 'uploadImage')) as UploadInput[];
    const s = await stat(image, { bigint: true });
    assert.equal(inputs.length, 1);
    const host = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    assert.deepEqual(inputs[0]?.imageIdentity, { device: s.dev.toString(), inode: s.ino.toString(), host });
  });

  test('an image replaced (same size) between pre-flight and upload fails the VM as ImageChanged', async () => {
    const { handle } = await startVm('replaced', queues.rooted, {}, { uploadTaskQueue: queues.swapSite });
    const failure = await failureOf(handle);
    assert.equal(failure.type, 'ImageChanged', failure.message);
    assert.match(failure.message, /is no longer the file pre-flight checked .*Leave the image in place/);
    assert.deepEqual(await tasksOf('replaced'), []);
  });

  test('uploadImage: a different inode is ImageChanged before any part is sent; no identity (an old history) uploads', async () => {
    const activities = createActivities({ config: localAwsConfig(s3, sim), imageRoots: [root] });
    const image = await makeImage(root, 'activity.raw', 'raw', { virtualMiB: 2, randomMiB: 1 });
    const s = await stat(image, { bigint: true });
    const input: UploadInput = {
      batch,
      vm: 'activity-upload',
      image,
      imageBytes: Number(s.size),
      partSizeBytes: 1024 * 1024,
      concurrency: 2,
    };
    const other = { device: s.dev.toString(), inode: (s.ino + 1n).toString() };
    await assert.rejects(
      new MockActivityEnvironment().run(activities.uploadImage, { ...input, imageIdentity: other }),
      (e: ApplicationFailure) => e.type === 'ImageChanged' && e.nonRetryable
    );
    const listed = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/${batch}/activity-upload/` })
    );
    assert.equal(listed.KeyCount ?? 0, 0, 'no part uploaded');
    const result: UploadResult = await new MockActivityEnvironment().run(activities.uploadImage, input);
    assert.equal(result.parts, 2);
    const same = { device: s.dev.toString(), inode: s.ino.toString() };
    const again: UploadResult = await new MockActivityEnvironment().run(activities.uploadImage, {
      ...input,
      imageIdentity: same,
    });
    assert.equal(again.parts, 2);
  });
});

test('the same file: device + inode on one host; the inode alone across hosts (an NFS export mounted on each)', () => {
  const a = { device: '42', inode: '7', host: 'boot-a' };
  assert.equal(sameFile(a, { ...a }), true);
  assert.equal(sameFile(a, { ...a, device: '43' }), false, 'same host, another device: another file');
  assert.equal(sameFile(a, { ...a, inode: '8' }), false);
  assert.equal(
    sameFile(a, { device: '99', inode: '7', host: 'boot-b' }),
    true,
    'another host numbers its mounts itself'
  );
  assert.equal(sameFile(a, { device: '99', inode: '8', host: 'boot-b' }), false);
  assert.equal(sameFile({ device: '42', inode: '7' }, { ...a, device: '43' }), false, 'no host recorded: compare both');
});
