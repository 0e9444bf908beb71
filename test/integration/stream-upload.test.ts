/**
 * The stream-optimized upload against a real S3 server (versitygw): a RAW disk and a fixed VHD go up as
 * the stream-optimized VMDK made from them, judged by qemu-img (check, compare with the source); the
 * parts are byte for byte the file the writer makes on its own; only what the disk holds crosses the
 * wire; an uploader killed with SIGKILL mid-upload is resumed from its last heartbeat, sends only the
 * parts after it, and leaves the same object an uninterrupted upload leaves.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createActivities } from '../../activities';
import { writeStreamVmdk } from '../../activities/disk-image/stream-vmdk-file';
import type { StreamUploadProgress } from '../../activities/upload-stream';
import type { UploadInput, UploadResult } from '../../common/contracts/activity-io';
import { REPO_ROOT } from '../../dev/services';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeSparseDisk, qemuImgRun } from '../helpers/sparse-disks';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, startS3, tempDir } from '../helpers/testbed';

const MiB = 1024 * 1024;
const PART = 1 * MiB;
const BATCH = 'batch-stream';
const VIRTUAL = 200 * MiB + 512 * 3;

describe('stream-optimized upload against S3', () => {
  let s3: TestS3;
  let wire: CountingProxy;
  let slowWire: CountingProxy;
  let linkWire: CountingProxy;
  let dir: { dir: string; remove(): Promise<void> };
  let raw: string;
  let activities: ReturnType<typeof createActivities>;

  before(async () => {
    s3 = await startS3();
    wire = await startCountingProxy(s3.endpoint);
    // 3 MB/s: the killed uploader is still mid-stream when the test kills it.
    slowWire = await startCountingProxy(s3.endpoint, { bytesPerSecond: 3_000_000 });
    // 8 MB/s: slower than the producer, so the upload's parts queue up behind the link.
    linkWire = await startCountingProxy(s3.endpoint, { bytesPerSecond: 8_000_000 });
    dir = await tempDir('vmconvoy-stream-upload-');
    raw = path.join(dir.dir, 'disk.raw');
    await makeSparseDisk(raw, VIRTUAL, [
      { at: 0, bytes: 6 * MiB, kind: 'random' },
      { at: 50 * MiB, bytes: 10 * MiB, kind: 'text' },
      { at: 120 * MiB + 4096, bytes: 3 * MiB, kind: 'random' },
      { at: VIRTUAL - 1024, bytes: 1024, kind: 'text' },
    ]);
    activities = createActivities({ config: { ...localAwsConfig(s3), s3Endpoint: wire.endpoint } });
  });
  after(async () => {
    await wire?.close();
    await slowWire?.close();
    await linkWire?.close();
    await s3?.stop();
    await dir?.remove();
  });

  const input = (vm: string, image = raw, virtualBytes = VIRTUAL): UploadInput => ({
    batch: BATCH,
    vm,
    image,
    imageBytes: virtualBytes,
    partSizeBytes: PART,
    concurrency: 3,
    streamOptimized: { virtualBytes },
  });

  /** The VM's parts, in order, concatenated: the object EC2 would read. */
  async function uploadedObject(vm: string): Promise<Buffer> {
    const out = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/${BATCH}/${vm}/` })
    );
    const keys = (out.Contents ?? [])
      .map((o) => o.Key!)
      .filter((k) => /image\.part\d+$/.test(k))
      .sort((a, b) => Number(/(\d+)$/.exec(a)![1]) - Number(/(\d+)$/.exec(b)![1]));
    const parts = await Promise.all(
      keys.map(async (Key) => {
        const o = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }));
        return Buffer.from(await o.Body!.transformToByteArray());
      })
    );
    keys.forEach((k, i) => assert.ok(k.endsWith(`image.part${i}`), `parts are contiguous: ${k}`));
    return Buffer.concat(parts);
  }

  /** The stream the writer makes on its own for this VM (the CID is the one upload-stream derives). */
  async function expectedStream(vm: string, image = raw, virtualBytes = VIRTUAL): Promise<Buffer> {
    const file = path.join(dir.dir, `${vm}.expected.vmdk`);
    await writeStreamVmdk(image, file, { virtualBytes, cid: crc32(`/${BATCH}/${vm}`) });
    return readFile(file);
  }

  async function judge(object: Buffer, source: string, sourceFormat: string, name: string): Promise<void> {
    const file = path.join(dir.dir, `${name}.uploaded.vmdk`);
    await writeFile(file, object);
    const check = await qemuImgRun(['check', '-f', 'vmdk', file]);
    assert.equal(check.code, 0, check.out);
    const compare = await qemuImgRun(['compare', '-f', sourceFormat, '-F', 'vmdk', source, file]);
    assert.equal(compare.code, 0, compare.out);
    assert.match(compare.out, /Images are identical/);
  }

  it('sends a RAW disk as a stream-optimized VMDK: valid, equal to the disk, only its data on the wire', async () => {
    const env = new MockActivityEnvironment();
    const beats: StreamUploadProgress[] = [];
    env.on('heartbeat', (d: StreamUploadProgress) => beats.push(d));
    wire.reset();
    const result: UploadResult = await env.run(activities.uploadImage, input('vm-raw'));
    const object = await uploadedObject('vm-raw');
    assert.equal(result.format, 'VMDK');
    assert.equal(result.imageBytes, object.length, 'Image.Bytes is the object uploaded');
    assert.equal(result.parts, Math.ceil(object.length / PART));
    assert.equal(result.bytesSent, object.length);
    assert.equal(wire.putBytes(/image\.part/), object.length, 'every byte of the stream crossed once');
    assert.ok(object.length < 20 * MiB, `${object.length} bytes for 19 MiB of data (10 of it text) on a 200 MiB disk`);
    assert.ok(object.equals(await expectedStream('vm-raw')), 'the parts are the stream the writer makes');
    await judge(object, raw, 'raw', 'vm-raw');
    const last = beats[beats.length - 1]!.stream;
    assert.equal(last.imageBytes, object.length);
    assert.equal(last.doneBelow, result.parts);
  });

  it('behind a link slower than the producer, at most `concurrency` parts are held: no more PUTs at once', async () => {
    // Part memory is the upload's largest: each part is held from the first byte put in it until its PUT
    // ends, so the parts in flight plus the one filling are what it costs. One buffer more than
    // `concurrency` had let a PUT more than `concurrency` go out whenever the link was the bottleneck.
    const vm = 'vm-bound';
    const linked = createActivities({ config: { ...localAwsConfig(s3), s3Endpoint: linkWire.endpoint } });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, linkWire.putsInFlight(/vm-bound\/image\.part/))), 2);
    try {
      await new MockActivityEnvironment().run(linked.uploadImage, input(vm));
    } finally {
      clearInterval(sampler);
    }
    const concurrency = input(vm).concurrency;
    assert.ok(most <= concurrency, `${most} PUTs at once with concurrency ${concurrency}`);
    assert.ok(most >= 2, `the sampler saw the PUTs overlap (${most} at most): the bound was exercised`);
    assert.ok((await uploadedObject(vm)).equals(await expectedStream(vm)));
  });

  it('a second run finds the upload complete in its heartbeat and S3, and sends nothing', async () => {
    const env = new MockActivityEnvironment();
    let last: StreamUploadProgress | undefined;
    env.on('heartbeat', (d: StreamUploadProgress) => (last = d));
    await env.run(activities.uploadImage, input('vm-twice'));
    wire.reset();
    const again: UploadResult = await new MockActivityEnvironment({ heartbeatDetails: last }).run(
      activities.uploadImage,
      input('vm-twice')
    );
    assert.equal(wire.putCount(), 0);
    assert.equal(again.imageBytes, (await uploadedObject('vm-twice')).length);
    // Without a heartbeat (a new activity), every part is recognised by its MD5 ETag instead.
    wire.reset();
    const fresh: UploadResult = await new MockActivityEnvironment().run(activities.uploadImage, input('vm-twice'));
    assert.equal(wire.putCount(), 0);
    assert.equal(fresh.bytesReused, fresh.imageBytes);
  });

  it('sends a fixed VHD as the stream-optimized VMDK of its data (the footer is not disk data)', async () => {
    const vhd = path.join(dir.dir, 'disk.vhd');
    const made = await qemuImgRun([
      'convert',
      '-f',
      'raw',
      '-O',
      'vpc',
      '-o',
      'subformat=fixed,force_size=on',
      raw,
      vhd,
    ]);
    assert.equal(made.code, 0, made.out);
    const size = (await stat(vhd)).size;
    const result: UploadResult = await new MockActivityEnvironment().run(activities.uploadImage, {
      ...input('vm-vhd', vhd, size - 512),
      imageBytes: size,
    });
    const object = await uploadedObject('vm-vhd');
    assert.equal(result.imageBytes, object.length);
    await judge(object, vhd, 'vpc', 'vm-vhd');
  });

  it('an uploader killed mid-upload is resumed from its last heartbeat: later parts only, the same object', async () => {
    const vm = 'vm-kill';
    const config = { ...localAwsConfig(s3), s3Endpoint: slowWire.endpoint };
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(REPO_ROOT, 'test', 'helpers', 'stream-upload-child.ts'),
        JSON.stringify({ config, input: input(vm) }),
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] }
    );
    let last: StreamUploadProgress | undefined;
    let buffered = '';
    const killed = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = JSON.parse(buffered.slice(0, nl)) as { heartbeat?: StreamUploadProgress; result?: unknown };
          buffered = buffered.slice(nl + 1);
          if (line.result) reject(new Error('the upload finished before the kill: slow the wire down'));
          if (line.heartbeat) last = line.heartbeat;
          if ((last?.stream.doneBelow ?? 0) >= 4 && child.exitCode === null) child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
    });
    await killed;
    assert.ok(last, 'the child heartbeated');
    const resumeAt = last.stream.doneBelow;
    assert.ok(resumeAt >= 4 && last.stream.checkpoint, `resumable at part ${resumeAt}`);
    assert.ok(last.stream.checkpoint.offset > 0, 'the checkpoint is mid-stream');

    wire.reset();
    const result: UploadResult = await new MockActivityEnvironment({ heartbeatDetails: last }).run(
      activities.uploadImage,
      input(vm)
    );
    const object = await uploadedObject(vm);
    const sent = wire.puts().map((p) => Number(/image\.part(\d+)/.exec(p.path)![1]));
    assert.ok(sent.length > 0 && sent.every((i) => i >= resumeAt), `parts sent after the kill: ${sent.join(',')}`);
    assert.ok(sent.length + resumeAt <= result.parts, 'nothing sent twice by the resumed attempt');
    assert.equal(result.imageBytes, object.length);
    assert.ok(object.equals(await expectedStream(vm)), 'the resumed upload left the uninterrupted stream');
    await judge(object, raw, 'raw', vm);
  });

  it('heartbeated parts missing from S3 are not trusted: the upload starts over and still ends whole', async () => {
    const vm = 'vm-lost';
    let mid: StreamUploadProgress | undefined;
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: StreamUploadProgress) => {
      if (!mid && d.stream.doneBelow >= 3 && d.stream.checkpoint) mid = d;
    });
    await env.run(activities.uploadImage, input(vm));
    assert.ok(mid);
    // The heartbeat claims part 0 with another ETag than S3 holds: the claim is stale.
    const stale = { stream: { ...mid.stream, etags: mid.stream.etags.map(() => '0'.repeat(32)) } };
    wire.reset();
    const result: UploadResult = await new MockActivityEnvironment({ heartbeatDetails: stale }).run(
      activities.uploadImage,
      input(vm)
    );
    // Started over: every part was checked (by MD5, all present), none trusted from the heartbeat.
    assert.equal(result.bytesReused, result.imageBytes);
    assert.ok((await uploadedObject(vm)).equals(await expectedStream(vm)));
  });
});
