/**
 * The realistic timing profile against vmconvoy's own describe activity, on a simulator whose clock the
 * test moves (minutes pass in milliseconds): a new task is not listed at first (eventual consistency),
 * then stays Pending while EC2 reads the image, then reports "Progress: N%" beside BytesConverted 0, as
 * real EC2 does (ajacoutot/aws-openbsd#34). The product must take its progress from StatusMessage.
 */
import type { ConversionTask } from '@aws-sdk/client-ec2';
import { DescribeConversionTasksCommand, EC2Client, ImportInstanceCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { describeConversion } from '../../activities/describe-conversion';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import type { TestS3 } from '../helpers/testbed';
import { startS3 } from '../helpers/testbed';
import { until } from '../helpers/wait';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
// The realistic profile as it is, except: the simulator looks for uploads every 100 ms of real time, and
// reads images slowly enough (64 KiB/s) that the Pending-while-reading phase spans several polls.
const REALISTIC = { profile: 'realistic', speed: { pendingPollMs: 100, readBytesPerSecond: 64 * 1024 } };

let s3: TestS3;
let sim: Simulator;
let ec2: EC2Client;
let dir: string;
let clock = Date.now();

before(async () => {
  [s3, sim, dir] = await Promise.all([
    startS3(),
    startSimulator({ config: REALISTIC, now: () => clock }),
    mkdtemp(path.join(tmpdir(), 'sim-timing-')),
  ]);
  ec2 = new EC2Client({ endpoint: sim.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
});
after(async () => {
  ec2?.destroy();
  await sim?.close();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function stagedImport(): Promise<{ id: string; bytes: number }> {
  const file = await makeGuestImage(dir, 'ubuntu.vmdk', GUESTS.ubuntu2204, 'stream-vmdk', { sizeMiB: 32 });
  const image = await readFile(file);
  const Bucket = s3.bucket;
  const presign = (c: GetObjectCommand | HeadObjectCommand) => getSignedUrl(s3.client, c, { expiresIn: 3600 });
  await s3.client.send(new PutObjectCommand({ Bucket, Key: 'timing/image.part0', Body: image }));
  const esc = (s: string) => s.replace(/&/g, '&amp;');
  const part =
    `<part index="0"><byte-range start="0" end="${image.length - 1}"/><key>timing/image.part0</key>` +
    `<head-url>${esc(await presign(new HeadObjectCommand({ Bucket, Key: 'timing/image.part0' })))}</head-url>` +
    `<get-url>${esc(await presign(new GetObjectCommand({ Bucket, Key: 'timing/image.part0' })))}</get-url></part>`;
  const manifest =
    '<manifest><version>2010-11-15</version><file-format>VMDK</file-format><importer><name>t</name><version>1</version><release>2010-11-15</release></importer>' +
    `<self-destruct-url>https://example.invalid/</self-destruct-url><import><size>${image.length}</size><volume-size>8</volume-size><parts count="1">${part}</parts></import></manifest>`;
  await s3.client.send(new PutObjectCommand({ Bucket, Key: 'timing/manifest.xml', Body: manifest }));
  const out = await ec2.send(
    new ImportInstanceCommand({
      Platform: 'Windows',
      LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm3.medium' },
      DiskImages: [
        {
          Image: {
            Format: 'VMDK',
            Bytes: image.length,
            ImportManifestUrl: await presign(new GetObjectCommand({ Bucket, Key: 'timing/manifest.xml' })),
          },
          Volume: { Size: 8 },
        },
      ],
    })
  );
  return { id: out.ConversionTask!.ConversionTaskId!, bytes: image.length };
}

const raw = async (id: string): Promise<ConversionTask> =>
  (await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!;

test('realistic profile: listed late, Pending while read, then Progress beside BytesConverted 0; the describe activity follows StatusMessage', async () => {
  const { id, bytes } = await stagedImport();
  const product = () => describeConversion({ ec2 }, { conversionTaskId: id, imageBytes: bytes });

  // 1. Not listed yet: EC2 answers InvalidConversionTaskId; the activity reads that as "not yet".
  await assert.rejects(raw(id), { name: 'InvalidConversionTaskId' });
  const early = await product();
  assert.deepEqual(
    [early.state, early.percent, early.statusMessage],
    ['active', 0, 'waiting for EC2 to list the conversion task']
  );
  clock += 16_000; // the realistic listing delay is at most 15 s
  assert.equal((await raw(id)).StatusMessage, 'Pending');

  // 2. The simulator has read the manifest and judged the image: still Pending while it reads the image.
  const task = await until(
    () => Promise.resolve(sim.model.state.tasks.find((t) => t.id === id)!),
    (t) => t.slotAt !== undefined,
    { timeoutMs: 30_000 }
  );
  assert.equal(task.judged?.includes('ubuntu'), true, task.judged);
  assert.ok(task.readMs! > 10_000, `reading ${bytes} bytes at 64 KiB/s takes a while (${task.readMs} ms)`);
  clock += task.readMs! - 1000;
  assert.deepEqual([(await raw(id)).StatusMessage, (await product()).percent], ['Pending', 0]);
  clock += 1000;

  // 3. Converting: minutes of "Progress: N%", BytesConverted 0 all along; then completed.
  const seen: Array<{ message: string; bytesConverted: number; percent: number }> = [];
  for (let i = 0; i < 200; i++) {
    const [t, p] = [await raw(id), await product()];
    seen.push({
      message: t.StatusMessage ?? '',
      bytesConverted: t.ImportInstance!.Volumes![0]!.BytesConverted ?? -1,
      percent: p.percent,
    });
    if (t.State !== 'active') break;
    clock += 30_000;
  }
  const last = await raw(id);
  assert.equal(last.State, 'completed', JSON.stringify(seen.at(-1)));
  assert.equal(last.ImportInstance!.Volumes![0]!.BytesConverted, bytes, 'completed: every byte');
  const progress = seen.filter((s) => /^Progress: \d+%$/.test(s.message));
  assert.ok(progress.length >= 10, `a realistic conversion spans many polls (${progress.length})`);
  const rising = progress.filter((s) => s.message !== 'Progress: 0%');
  assert.ok(rising.length > 0);
  for (const s of rising) {
    assert.equal(s.bytesConverted, 0, 'BytesConverted stays 0 beside Progress, as on real EC2');
    assert.equal(s.percent, Number(/(\d+)%/.exec(s.message)![1]), `the activity's percent comes from "${s.message}"`);
  }
  assert.equal((await product()).percent, 100);
});
