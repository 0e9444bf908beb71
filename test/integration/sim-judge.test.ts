/**
 * Content judging end to end: guest disks built with real tools (test/helpers/guest-images.ts) are
 * uploaded in parts to the real S3 server, imported with ImportInstance through @aws-sdk/client-ec2, and
 * the simulator reads them back through the manifest's presigned URLs and judges them as VM Import does.
 * A supported distribution completes (and is a Linux instance whatever Platform said), an old kernel, a
 * disk without a partition table, a disk without an OS, random bytes and an unsupported Windows fail with
 * EC2's messages; the explicit marker still wins; `judge.content: false` restores the old behaviour.
 */
import type { ConversionTask } from '@aws-sdk/client-ec2';
import {
  DescribeConversionTasksCommand,
  DescribeInstancesCommand,
  EC2Client,
  ImportInstanceCommand,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import type { GuestContainer, GuestImageOptions, GuestSpec } from '../helpers/guest-images';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import { makeImage } from '../helpers/images';
import type { TestS3 } from '../helpers/testbed';
import { startS3 } from '../helpers/testbed';
import { until } from '../helpers/wait';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
const FAST = {
  speed: { conversionBytesPerSecond: 512 * 1024 * 1024, stepSeconds: 0.05, pendingPollMs: 100, cancelSeconds: 0.1 },
};
const MiB = 1024 * 1024;
const FORMAT: Record<GuestContainer, 'RAW' | 'VMDK' | 'VHD'> = {
  raw: 'RAW',
  'stream-vmdk': 'VMDK',
  'fixed-vhd': 'VHD',
  'dynamic-vhd': 'VHD',
};

let s3: TestS3;
let sim: Simulator;
let ec2: EC2Client;
let dir: string;
let seq = 0;

before(async () => {
  [s3, sim, dir] = await Promise.all([
    startS3(),
    startSimulator({ config: FAST }),
    mkdtemp(path.join(tmpdir(), 'sim-judge-it-')),
  ]);
  ec2 = new EC2Client({ endpoint: sim.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
});
after(async () => {
  ec2?.destroy();
  await sim?.close();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

const presign = (command: GetObjectCommand | HeadObjectCommand) =>
  getSignedUrl(s3.client, command, { expiresIn: 3600 });
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Uploads `file` in 8 MiB parts with a manifest written as AWS's schema has it; returns the presigned manifest URL. */
async function stage(file: string, format: string): Promise<{ bytes: number; manifestUrl: string }> {
  const image = await readFile(file);
  const prefix = `judge-${++seq}-${randomBytes(4).toString('hex')}`;
  const Bucket = s3.bucket;
  const parts: string[] = [];
  for (let start = 0, index = 0; start < image.length; start += 8 * MiB, index++) {
    const end = Math.min(image.length, start + 8 * MiB) - 1;
    const Key = `${prefix}/image.part${index}`;
    await s3.client.send(new PutObjectCommand({ Bucket, Key, Body: image.subarray(start, end + 1) }));
    const head = await presign(new HeadObjectCommand({ Bucket, Key }));
    const get = await presign(new GetObjectCommand({ Bucket, Key }));
    parts.push(
      `<part index="${index}"><byte-range start="${start}" end="${end}"/><key>${Key}</key><head-url>${esc(head)}</head-url><get-url>${esc(get)}</get-url></part>`
    );
  }
  const manifest =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
    `<manifest><version>2010-11-15</version><file-format>${format}</file-format>` +
    '<importer><name>sim-judge-test</name><version>1.0.0</version><release>2010-11-15</release></importer>' +
    `<self-destruct-url>https://example.invalid/</self-destruct-url><import><size>${image.length}</size><volume-size>8</volume-size>` +
    `<parts count="${parts.length}">${parts.join('')}</parts></import></manifest>`;
  const Key = `${prefix}/image.manifest.xml`;
  await s3.client.send(new PutObjectCommand({ Bucket, Key, Body: manifest }));
  return { bytes: image.length, manifestUrl: await presign(new GetObjectCommand({ Bucket, Key })) };
}

/** Imports a staged image (Platform as given: the judge decides what the instance really is) and waits for the end. */
async function importAndSettle(file: string, format: string): Promise<ConversionTask> {
  const { bytes, manifestUrl } = await stage(file, format);
  const out = await ec2.send(
    new ImportInstanceCommand({
      Platform: 'Windows',
      LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm3.medium' },
      DiskImages: [
        { Image: { Format: format as 'RAW', Bytes: bytes, ImportManifestUrl: manifestUrl }, Volume: { Size: 8 } },
      ],
    })
  );
  const id = out.ConversionTask!.ConversionTaskId!;
  return until(
    async () => (await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!,
    (t) => t.State === 'completed' || t.State === 'cancelled',
    { timeoutMs: 60_000, intervalMs: 100 }
  );
}

async function guest(
  spec: GuestSpec,
  container: GuestContainer,
  opts: GuestImageOptions = {}
): Promise<ConversionTask> {
  const file = await makeGuestImage(dir, `g${++seq}.img`, spec, container, { sizeMiB: 32, ...opts });
  return importAndSettle(file, FORMAT[container]);
}

async function platformOf(instanceId: string): Promise<string | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations![0]!.Instances![0]!.Platform;
}

const judgedOf = (id: string) => sim.model.state.tasks.find((t) => t.id === id)?.judged;

describe('guests that VM Import accepts', () => {
  test('Ubuntu 22.04 in a stream-optimized VMDK completes, as a Linux instance although the request said Windows', async () => {
    const done = await guest(GUESTS.ubuntu2204, 'stream-vmdk');
    assert.deepEqual([done.State, done.StatusMessage], ['completed', '']);
    assert.equal(await platformOf(done.ImportInstance!.InstanceId!), undefined, 'no platform: Linux');
    assert.match(judgedOf(done.ConversionTaskId!)!, /kernel 5\.15\.0-91-generic/);
  });

  test('CentOS 5.11 (kernel 2.6.18) in a dynamic VHD completes', async () => {
    const done = await guest(GUESTS.centos511, 'dynamic-vhd');
    assert.equal(done.State, 'completed', done.StatusMessage);
  });

  test('Windows Server 2019 in a fixed VHD completes as a Windows instance', async () => {
    const done = await guest(GUESTS.windows2019, 'fixed-vhd');
    assert.equal(done.State, 'completed', done.StatusMessage);
    assert.equal(await platformOf(done.ImportInstance!.InstanceId!), 'windows');
  });
});

describe('guests that VM Import refuses, with its messages', () => {
  for (const [label, spec, container, message] of [
    [
      'CentOS 4.9 with kernel 2.6.9',
      GUESTS.centos4,
      'stream-vmdk',
      'ClientError: Unsupported kernel version 2.6.9-103.EL',
    ],
    [
      'a file system without a partition table',
      GUESTS.unpartitioned,
      'raw',
      'ClientError: No valid partitions. Not a valid volume.',
    ],
    [
      'a partition without an operating system',
      GUESTS.empty,
      'stream-vmdk',
      'ClientError: Unknown OS / Missing OS files',
    ],
  ] as Array<[string, GuestSpec, GuestContainer, string]>) {
    test(`${label}: cancelled with "${message}", nothing left behind`, async () => {
      const done = await guest(spec, container);
      assert.deepEqual([done.State, done.StatusMessage], ['cancelled', message]);
      assert.equal(
        sim.model.state.instances.some((i) => i.instanceId === done.ImportInstance!.InstanceId),
        false
      );
    });
  }

  test('Windows XP: "ClientError: Unsupported Windows OS"', async () => {
    const done = await guest(GUESTS.windowsXp, 'stream-vmdk');
    assert.deepEqual([done.State, done.StatusMessage], ['cancelled', 'ClientError: Unsupported Windows OS']);
  });

  test('random bytes behind an MBR signature (the old test images) no longer become a Windows instance', async () => {
    const file = await makeImage(dir, `random-${++seq}.raw`, 'raw', { virtualMiB: 8, randomMiB: 8 });
    const done = await importAndSettle(file, 'RAW');
    assert.deepEqual(
      [done.State, done.StatusMessage],
      ['cancelled', 'ClientError: No valid partitions. Not a valid volume.']
    );
  });
});

describe('the explicit marker and the switch', () => {
  test('the marker (a fault content cannot express) still fails a good guest with its message', async () => {
    const message =
      'FirstBootFailure: This import request failed because the Windows instance failed to boot and establish network connectivity.';
    const done = await guest(GUESTS.ubuntu2204, 'stream-vmdk', { marker: `VMCONVOY_SIM_FAIL=${message}` });
    assert.deepEqual([done.State, done.StatusMessage], ['cancelled', message]);
  });

  test('judge.content false: the container is all that is checked, random bytes complete as before', async () => {
    sim.configure({ judge: { content: false } });
    try {
      const file = await makeImage(dir, `random-${++seq}.raw`, 'raw', { virtualMiB: 8, randomMiB: 8 });
      const done = await importAndSettle(file, 'RAW');
      assert.equal(done.State, 'completed');
      assert.equal(judgedOf(done.ConversionTaskId!), undefined, 'not judged');
    } finally {
      sim.configure({ judge: { content: true } });
    }
  });
});
