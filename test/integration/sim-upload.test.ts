/**
 * The simulator reading uploads the way EC2 does, with manifests written here by hand (reference §4.1)
 * rather than by vmconvoy's activities, so each rule can be broken on purpose: manifest checks, parts
 * behind tampered/expired/missing presigned URLs, a URL that points at something that is not a manifest,
 * and the progress of a conversion (rising bytesConverted, time proportional to the image size).
 */
import type { ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import {
  CancelConversionTaskCommand,
  DescribeConversionTasksCommand,
  EC2Client,
  ImportInstanceCommand,
} from '@aws-sdk/client-ec2';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import type { ManifestPart } from '../../sim/conversion/manifest';
import type { TestS3 } from '../helpers/testbed';
import { startS3 } from '../helpers/testbed';
import { until } from '../helpers/wait';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
// This file is about reading the upload (manifest, parts, progress), with byte-exact random images: content
// judging is off here; test/integration/sim-judge.test.ts covers it with real guest disks.
const FAST = {
  speed: { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.05, pendingPollMs: 100, cancelSeconds: 0.1 },
  judge: { content: false },
};
const MiB = 1024 * 1024;

let s3: TestS3;
let sim: Simulator;
let ec2: EC2Client;
let seq = 0;

before(async () => {
  s3 = await startS3();
  sim = await startSimulator({ config: FAST });
  ec2 = new EC2Client({ endpoint: sim.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
});
after(async () => {
  ec2?.destroy();
  await sim?.close();
  await s3?.stop();
});

/** What the manifest lists for a part, plus the DELETE URL the writer adds. */
type Part = ManifestPart & { deleteUrl: string };

interface Upload {
  prefix: string;
  bytes: number;
  parts: Part[];
  manifestKey: string;
  manifestUrl: string;
}

const presign = (
  command: GetObjectCommand | HeadObjectCommand | DeleteObjectCommand | PutObjectCommand,
  expiresIn = 3600
) => getSignedUrl(s3.client, command, { expiresIn });

/** Uploads `image` in parts of `partSize` and presigns every URL a manifest needs (the manifest is not written yet). */
async function upload(image: Buffer, partSize = MiB): Promise<Upload> {
  const prefix = `upload-${++seq}-${randomBytes(4).toString('hex')}`;
  const parts: Part[] = [];
  for (let start = 0, index = 0; start < image.length; start += partSize, index++) {
    const end = Math.min(image.length, start + partSize) - 1;
    const key = `${prefix}/image.part${index}`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: image.subarray(start, end + 1) }));
    const Bucket = s3.bucket;
    parts.push({
      index,
      start,
      end,
      key,
      headUrl: await presign(new HeadObjectCommand({ Bucket, Key: key })),
      getUrl: await presign(new GetObjectCommand({ Bucket, Key: key })),
      deleteUrl: await presign(new DeleteObjectCommand({ Bucket, Key: key })),
    });
  }
  const manifestKey = `${prefix}/image.manifest.xml`;
  return {
    prefix,
    bytes: image.length,
    parts,
    manifestKey,
    manifestUrl: await presign(new GetObjectCommand({ Bucket: s3.bucket, Key: manifestKey })),
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface ManifestFields {
  version: string;
  format: string;
  size: number;
  volumeSize: number;
  count: number;
  parts: Part[];
}

/** The manifest XML of reference §4.1, from its fields (each one can be set wrong on purpose). */
function manifestXml(u: Upload, over: Partial<ManifestFields> = {}): string {
  const m: ManifestFields = {
    version: '2010-11-15',
    format: 'RAW',
    size: u.bytes,
    volumeSize: 8,
    count: (over.parts ?? u.parts).length,
    parts: u.parts,
    ...over,
  };
  const parts = m.parts
    .map(
      (p) =>
        `<part index="${p.index}"><byte-range start="${p.start}" end="${p.end}"/><key>${esc(p.key)}</key>` +
        `<head-url>${esc(p.headUrl)}</head-url><get-url>${esc(p.getUrl)}</get-url><delete-url>${esc(p.deleteUrl)}</delete-url></part>`
    )
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
    `<manifest><version>${m.version}</version><file-format>${m.format}</file-format>` +
    '<importer><name>sim-upload-test</name><version>1.0.0</version><release>2010-11-15</release></importer>' +
    `<self-destruct-url>https://example.invalid/</self-destruct-url>` +
    `<import><size>${m.size}</size><volume-size>${m.volumeSize}</volume-size><parts count="${m.count}">${parts}</parts></import></manifest>`
  );
}

async function putManifest(u: Upload, body: string | Buffer): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: u.manifestKey, Body: body }));
}

/** A RAW disk: random bytes with an MBR signature. */
function rawImage(bytes: number): Buffer {
  const image = randomBytes(bytes);
  image[510] = 0x55;
  image[511] = 0xaa;
  return image;
}

function importInput(u: Upload, extra: { bytes?: number; format?: string } = {}): ImportInstanceCommandInput {
  return {
    Platform: 'Windows',
    LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm5.large' },
    DiskImages: [
      {
        Image: {
          Format: (extra.format ?? 'RAW') as 'RAW',
          Bytes: extra.bytes ?? u.bytes,
          ImportManifestUrl: u.manifestUrl,
        },
        Volume: { Size: 8 },
      },
    ],
  };
}

async function importTask(u: Upload, extra: { bytes?: number; format?: string } = {}): Promise<string> {
  return (await ec2.send(new ImportInstanceCommand(importInput(u, extra)))).ConversionTask!.ConversionTaskId!;
}

const task = async (id: string) =>
  (await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!;

const settled = (id: string) =>
  until(
    () => task(id),
    (t) => t.State === 'completed' || t.State === 'cancelled'
  );

/** What the simulator last ran into while the task waited (from `/_sim/state`). */
async function pendingReason(id: string): Promise<string | undefined> {
  const state = (await (await fetch(`${sim.url}/_sim/state`)).json()) as {
    tasks: Array<{ id: string; pendingReason?: string }>;
  };
  return state.tasks.find((t) => t.id === id)?.pendingReason;
}

/** Waits until the simulator has tried to read the upload and reports a reason matching `pattern`. */
const waitingBecause = (id: string, pattern: RegExp) =>
  until(
    () => pendingReason(id),
    (r) => pattern.test(r ?? '')
  );

describe('manifest checks: a readable but wrong manifest cancels the task with the reason', () => {
  const image = rawImage(3 * MiB + 4096);
  for (const [label, over, message] of [
    ['an unknown manifest version', { version: '2007-01-01' }, /unsupported version "2007-01-01"/],
    ['a volume-size other than Volume.Size', { volumeSize: 9 }, /volume-size 9 does not match Volume\.Size 8/],
    ['parts@count unlike the parts listed', { count: 7 }, /parts count 7 but 4 parts listed/],
    ['a gap between byte ranges', 'gap', /part 1 byte-range 1048577-\d+ does not continue at 1048576/],
    ['parts that stop short of import/size', 'short', /parts cover 3145728 bytes, import size is 3149824/],
    ['a byte range longer than its part object', 'long', /part 3 has 4096 bytes, its byte-range says 4097/],
  ] as Array<[string, Partial<ManifestFields> | 'gap' | 'short' | 'long', RegExp]>) {
    test(label, async () => {
      const u = await upload(image);
      let fields: Partial<ManifestFields>;
      if (over === 'gap') fields = { parts: u.parts.map((p) => (p.index === 1 ? { ...p, start: p.start + 1 } : p)) };
      else if (over === 'short') fields = { parts: u.parts.slice(0, 3) };
      else if (over === 'long')
        fields = { size: u.bytes + 1, parts: u.parts.map((p) => (p.index === 3 ? { ...p, end: p.end + 1 } : p)) };
      else fields = over;
      await putManifest(u, manifestXml(u, fields));
      const id = await importTask(u, { bytes: fields.size ?? u.bytes });
      const done = await settled(id);
      assert.equal(done.State, 'cancelled');
      assert.match(done.StatusMessage!, /^ClientError: /);
      assert.match(done.StatusMessage!, message);
      assert.equal(done.ImportInstance!.Volumes![0]!.BytesConverted, 0);
      const left = sim.model.state;
      assert.equal(
        left.instances.some((i) => i.instanceId === done.ImportInstance!.InstanceId),
        false,
        'the instance is removed'
      );
      assert.equal(
        left.volumes.some((v) => v.volumeId === done.ImportInstance!.Volumes![0]!.Volume!.Id),
        false,
        'the volume is removed'
      );
    });
  }

  test('the same upload with a correct manifest converts (the checks above are not failing everything)', async () => {
    const u = await upload(image);
    await putManifest(u, manifestXml(u));
    const done = await settled(await importTask(u));
    assert.deepEqual(
      [done.State, done.StatusMessage, done.ImportInstance!.Volumes![0]!.BytesConverted],
      ['completed', '', image.length]
    );
  });
});

describe('unreadable uploads: the task keeps waiting, then converts once it can read them', () => {
  test('a part behind a tampered get-url and head-url', async () => {
    const u = await upload(rawImage(2 * MiB));
    const tamper = (url: string) =>
      url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
    const bad = u.parts.map((p) =>
      p.index === 1 ? { ...p, getUrl: tamper(p.getUrl), headUrl: tamper(p.headUrl) } : p
    );
    await putManifest(u, manifestXml(u, { parts: bad }));
    const id = await importTask(u);
    assert.match((await waitingBecause(id, /part 1/))!, /part 1 not readable yet \(HTTP 403\)/);
    const t = await task(id);
    assert.deepEqual(
      [t.State, t.StatusMessage, t.ImportInstance!.Volumes![0]!.BytesConverted],
      ['active', 'Pending', 0]
    );
    await putManifest(u, manifestXml(u));
    assert.equal((await settled(id)).State, 'completed');
  });

  test('a part whose presigned URLs have expired', async () => {
    const u = await upload(rawImage(2 * MiB));
    const key = u.parts[0]!.key;
    const expired = {
      ...u.parts[0]!,
      headUrl: await presign(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }), 1),
      getUrl: await presign(new GetObjectCommand({ Bucket: s3.bucket, Key: key }), 1),
    };
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await fetch(expired.getUrl)).status, 403, 'the S3 server itself refuses the expired URL');
    await putManifest(u, manifestXml(u, { parts: [expired, ...u.parts.slice(1)] }));
    const id = await importTask(u);
    await waitingBecause(id, /part 0 not readable yet \(HTTP 403\)/);
    assert.equal((await task(id)).State, 'active');
    await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id }));
    assert.equal((await settled(id)).State, 'cancelled');
  });

  test('a part not uploaded yet (404) converts once it is there', async () => {
    const image = rawImage(2 * MiB);
    const u = await upload(image);
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: u.parts[1]!.key }));
    await putManifest(u, manifestXml(u));
    const id = await importTask(u);
    await waitingBecause(id, /part 1 not readable yet \(HTTP 404\)/);
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: u.parts[1]!.key, Body: image.subarray(MiB) }));
    assert.equal((await settled(id)).State, 'completed');
  });

  test('a manifest URL that points at the image itself: no manifest, so EC2 just waits (until expiry)', async () => {
    const u = await upload(rawImage(MiB));
    const id = await importTask({ ...u, manifestUrl: u.parts[0]!.getUrl });
    await waitingBecause(id, /without a <manifest> root element|does not return XML/);
    assert.deepEqual([(await task(id)).State, (await task(id)).StatusMessage], ['active', 'Pending']);
    await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id }));
    await settled(id);
  });
});

describe('progress', () => {
  test('"Progress: N%" rises with bytesConverted, in steps, and the time is proportional to the image size', async () => {
    sim.configure({ speed: { conversionBytesPerSecond: 4 * MiB, stepSeconds: 0.1 } });
    try {
      const small = await upload(rawImage(4 * MiB), 2 * MiB);
      const large = await upload(rawImage(8 * MiB), 2 * MiB);
      await putManifest(small, manifestXml(small));
      await putManifest(large, manifestXml(large));
      const [a, b] = [await importTask(small), await importTask(large)];
      const seen: Array<{ message: string; bytes: number }> = [];
      const done = await until(
        () => task(b),
        (t) => {
          seen.push({ message: t.StatusMessage ?? '', bytes: t.ImportInstance!.Volumes![0]!.BytesConverted ?? -1 });
          return t.State !== 'active';
        }
      );
      assert.equal(done.State, 'completed');
      const progress = seen.filter((s) => s.message.startsWith('Progress: '));
      for (const p of progress) {
        const percent = Number(/^Progress: (\d+)%$/.exec(p.message)?.[1]);
        assert.equal(percent, Math.floor((p.bytes / large.bytes) * 100), JSON.stringify(p));
      }
      const distinct = [...new Set(progress.map((p) => p.bytes))];
      assert.ok(distinct.length >= 5, `several steps seen: ${distinct.join(',')}`);
      assert.deepEqual(
        distinct,
        [...distinct].sort((x, y) => x - y),
        'bytesConverted never goes back'
      );
      assert.ok(distinct[distinct.length - 1]! < large.bytes, 'in progress means not yet all');
      assert.equal(done.ImportInstance!.Volumes![0]!.BytesConverted, large.bytes);
      // Durations come from Image.Bytes / conversionBytesPerSecond: twice the bytes, twice the time.
      const byId = (id: string) => sim.model.state.tasks.find((t) => t.id === id)!;
      assert.equal(byId(a).durationMs, 1000);
      assert.equal(byId(b).durationMs, 2000);
      const first = await settled(a);
      assert.equal(first.State, 'completed');
      assert.ok(byId(a).endedAt! - byId(a).readyAt! >= 1000 && byId(b).endedAt! - byId(b).readyAt! >= 2000);
    } finally {
      sim.configure(FAST);
    }
  });
});
