/**
 * Upload, manifest and cleanup activities against a real S3 server (versitygw), run in
 * MockActivityEnvironment so heartbeats, heartbeat details and cancellation are the real SDK paths.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { XMLParser } from 'fast-xml-parser';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, truncate } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createActivities } from '../../activities';
import { inventoryKeyFor, storeInventory } from '../../common/inventory-store';
import { vmSpecSchema } from '../../common/contracts/migration';
import type { UploadProgress } from '../../activities/upload';
import type { ManifestInput, ManifestResult, UploadInput, UploadResult } from '../../common/contracts/activity-io';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage } from '../helpers/images';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, startS3, tempDir } from '../helpers/testbed';

const MiB = 1024 * 1024;
const PART = 4 * MiB;
const BATCH = 'batch-s3';

describe('upload, manifest and cleanup activities against S3', () => {
  let s3: TestS3;
  let dir: { dir: string; remove(): Promise<void> };
  let image: string;
  let imageData: Buffer;
  let activities: ReturnType<typeof createActivities>;
  /** Between the activities and S3, so tests can count the bytes really sent. */
  let wire: CountingProxy;

  before(async () => {
    s3 = await startS3();
    wire = await startCountingProxy(s3.endpoint);
    dir = await tempDir('vmconvoy-upload-');
    // ~40 MiB of incompressible data, not a multiple of the part size: 10 full parts and a short one.
    image = await makeImage(dir.dir, 'disk.raw', 'raw', { virtualMiB: 40, randomMiB: 40 });
    await truncate(image, 40 * MiB + 512 * 3);
    imageData = await readFile(image);
    activities = createActivities({ config: { ...localAwsConfig(s3), s3Endpoint: wire.endpoint }, qemuImg: false });
  });
  after(async () => {
    await wire?.close();
    await s3?.stop();
    await dir?.remove();
  });

  const input = (vm: string, extra: Partial<UploadInput> = {}): UploadInput => ({
    batch: BATCH,
    vm,
    image,
    imageBytes: imageData.length,
    partSizeBytes: PART,
    concurrency: 3,
    ...extra,
  });

  async function keysUnder(prefix: string): Promise<Map<string, number>> {
    const out = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return new Map((out.Contents ?? []).map((o) => [o.Key!, o.Size!]));
  }

  async function getObject(key: string): Promise<Buffer> {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  it('uploads the image as 11 part objects whose concatenation is the image, heartbeating after each part', async () => {
    const env = new MockActivityEnvironment();
    const beats: UploadProgress[] = [];
    env.on('heartbeat', (d: UploadProgress) => beats.push(d));
    wire.reset();
    const result = await env.run(activities.uploadImage, input('vm1'));
    assert.deepEqual(result, { parts: 11, bytesSent: imageData.length, bytesReused: 0 });
    assert.equal(wire.putBytes(/image\.part/), imageData.length, 'every byte crossed the wire once');
    assert.equal(wire.putCount(/image\.part/), 11);

    const keys = await keysUnder(`vmconvoy/${BATCH}/vm1/`);
    assert.equal(keys.size, 11);
    assert.equal(keys.get(`vmconvoy/${BATCH}/vm1/image.part10`), 3 * 512);
    const parts = await Promise.all(
      Array.from({ length: 11 }, (_, i) => getObject(`vmconvoy/${BATCH}/vm1/image.part${i}`))
    );
    assert.equal(sha(Buffer.concat(parts)), sha(imageData));

    assert.ok(beats.length >= 11, `heartbeats: ${beats.length}`);
    const last = beats[beats.length - 1]!;
    assert.equal(last.doneBelow, 11);
    assert.equal(last.bytesSent, imageData.length);
    for (const beat of beats) {
      assert.ok(Array.isArray(beat.done) && beat.done.every((n) => typeof n === 'number'));
      assert.deepEqual(Object.keys(beat).sort(), ['bytesSent', 'done', 'doneBelow'], 'numbers only, nothing else');
    }
  });

  it('a second run finds every part in S3 (size and MD5 ETag) and sends nothing', async () => {
    wire.reset();
    const result = await new MockActivityEnvironment().run(activities.uploadImage, input('vm1'));
    assert.deepEqual(result, { parts: 11, bytesSent: 0, bytesReused: imageData.length });
    assert.equal(wire.putCount(), 0, 'no PUT at all');
  });

  it('re-sends a part whose S3 copy was corrupted or cut short, and only those', async () => {
    const key3 = `vmconvoy/${BATCH}/vm1/image.part3`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key3, Body: randomBytes(PART) }));
    await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: `vmconvoy/${BATCH}/vm1/image.part7`,
        Body: imageData.subarray(7 * PART, 7 * PART + 1000),
      })
    );
    wire.reset();
    const result = await new MockActivityEnvironment().run(activities.uploadImage, input('vm1'));
    assert.deepEqual(result, { parts: 11, bytesSent: 2 * PART, bytesReused: imageData.length - 2 * PART });
    assert.equal(wire.putCount(/image\.part(3|7)\b/), 2);
    assert.equal(wire.putCount(), 2, 'only the two damaged parts were sent');
    assert.equal(sha(await getObject(key3)), sha(imageData.subarray(3 * PART, 4 * PART)));
  });

  it('every part carries its CRC32: S3 refuses a part damaged on the way (retryable), the next attempt sends it again', async () => {
    wire.corruptNextPuts(/vm-damaged\/image\.part2\b/, 1);
    const failure = await new MockActivityEnvironment().run(activities.uploadImage, input('vm-damaged')).then(
      () => undefined,
      (err: unknown) => err
    );
    assert.ok(failure instanceof ApplicationFailure, `failed with ${String(failure)}`);
    assert.equal(failure.type, 'S3ChecksumMismatch');
    assert.equal(failure.nonRetryable, false, 'a damaged transfer is worth another attempt');
    assert.ok(
      !(await keysUnder(`vmconvoy/${BATCH}/vm-damaged/`)).has(`vmconvoy/${BATCH}/vm-damaged/image.part2`),
      'S3 kept nothing of the damaged part'
    );

    wire.reset();
    await new MockActivityEnvironment().run(activities.uploadImage, input('vm-damaged'));
    assert.equal((await keysUnder(`vmconvoy/${BATCH}/vm-damaged/`)).size, 11);
    assert.ok(wire.putCount(/vm-damaged\/image\.part2\b/) === 1, 'the damaged part was sent again');
    assert.equal(
      sha(await getObject(`vmconvoy/${BATCH}/vm-damaged/image.part2`)),
      sha(imageData.subarray(2 * PART, 3 * PART))
    );
  });

  it('resumes from heartbeat details: parts a previous attempt finished are not touched again', async () => {
    const env = new MockActivityEnvironment({
      heartbeatDetails: { done: [0, 1, 2, 3, 4], doneBelow: 0, bytesSent: 5 * PART },
    });
    wire.reset();
    const result: UploadResult = await env.run(activities.uploadImage, input('vm-resume'));
    // Only parts 5..10 were sent by this attempt; bytesSent counts all attempts.
    assert.equal(wire.putBytes(), imageData.length - 5 * PART);
    assert.equal(result.bytesSent, 5 * PART + (imageData.length - 5 * PART));
    assert.equal(result.bytesReused, 0);
    const keys = [...(await keysUnder(`vmconvoy/${BATCH}/vm-resume/`)).keys()]
      .map((k) => Number(/part(\d+)$/.exec(k)![1]))
      .sort((a, b) => a - b);
    assert.deepEqual(keys, [5, 6, 7, 8, 9, 10], 'the heartbeated parts were trusted, not re-sent');
  });

  it('stops when the activity is cancelled, keeping what was done in the heartbeat', async () => {
    const env = new MockActivityEnvironment();
    const beats: UploadProgress[] = [];
    env.on('heartbeat', (d: UploadProgress) => {
      beats.push(d);
      if (beats.length === 1) env.cancel();
    });
    await assert.rejects(
      env.run(activities.uploadImage, input('vm-cancel', { concurrency: 1 })),
      (err: unknown) => err instanceof CancelledFailure
    );
    const uploaded = (await keysUnder(`vmconvoy/${BATCH}/vm-cancel/`)).size;
    assert.ok(uploaded >= 1 && uploaded < 11, `uploaded ${uploaded} parts before stopping`);
  });

  it('refuses to upload an image whose size changed since pre-flight', async () => {
    await assert.rejects(
      new MockActivityEnvironment().run(
        activities.uploadImage,
        input('vm-changed', { imageBytes: imageData.length - 512 })
      ),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'ImageChanged' && err.nonRetryable
    );
  });

  it('writes a manifest whose presigned URLs work with plain fetch, and returns no URL', async () => {
    const validUntil = new Date(Date.now() + 3600_000).toISOString();
    const manifestInput: ManifestInput = {
      batch: BATCH,
      vm: 'vm1',
      format: 'RAW',
      imageBytes: imageData.length,
      volumeSizeGib: 8,
      partSizeBytes: PART,
      validUntil,
    };
    const result: ManifestResult = await new MockActivityEnvironment().run(activities.writeManifest, manifestInput);
    assert.equal(result.manifestKey, `vmconvoy/${BATCH}/vm1/manifest.xml`);
    assert.deepEqual(result.warnings, []);
    assert.ok(Math.abs(Date.parse(result.urlsExpireAt) - Date.parse(validUntil)) < 5000);
    assert.doesNotMatch(JSON.stringify(result), /X-Amz|http/);

    const xml = (await getObject(result.manifestKey)).toString('utf8');
    const parsed = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      parseTagValue: false,
      isArray: (n) => n === 'part',
    }).parse(xml) as {
      manifest: {
        import: {
          size: string;
          parts: {
            count: string;
            part: Array<{
              key: string;
              'get-url': string;
              'head-url': string;
              'byte-range': { start: string; end: string };
            }>;
          };
        };
      };
    };
    const parts = parsed.manifest.import.parts.part;
    assert.equal(parts.length, 11);
    assert.equal(Number(parsed.manifest.import.size), imageData.length);
    for (const i of [0, 10]) {
      const part = parts[i]!;
      const got = await fetch(part['get-url']);
      assert.equal(got.status, 200, `GET part ${i}`);
      const body = Buffer.from(await got.arrayBuffer());
      const start = Number(part['byte-range'].start);
      assert.equal(sha(body), sha(imageData.subarray(start, Number(part['byte-range'].end) + 1)));
      const head = await fetch(part['head-url'], { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD part ${i}`);
      assert.equal(Number(head.headers.get('content-length')), body.length);
    }
    // The URL really is signed: without its query string S3 refuses it.
    assert.equal((await fetch(parts[0]!['get-url'].split('?')[0]!)).ok, false);
  });

  it('writes delete-url and self-destruct-url that really delete the part and the manifest', async () => {
    const result: ManifestResult = await new MockActivityEnvironment().run(activities.writeManifest, {
      batch: BATCH,
      vm: 'vm-resume',
      format: 'RAW',
      imageBytes: imageData.length,
      volumeSizeGib: 8,
      partSizeBytes: PART,
      validUntil: new Date(Date.now() + 3600_000).toISOString(),
    } satisfies ManifestInput);
    const xml = (await getObject(result.manifestKey)).toString('utf8');
    const unescape = (u: string): string => u.replace(/&amp;/g, '&');
    const deleteUrl = unescape(/<part index="10">[\s\S]*?<delete-url>([^<]+)<\/delete-url>/.exec(xml)![1]!);
    const selfDestruct = unescape(/<self-destruct-url>([^<]+)<\/self-destruct-url>/.exec(xml)![1]!);
    assert.ok((await keysUnder(`vmconvoy/${BATCH}/vm-resume/image.part10`)).size === 1);
    assert.equal((await fetch(deleteUrl, { method: 'DELETE' })).status, 204);
    assert.equal((await keysUnder(`vmconvoy/${BATCH}/vm-resume/image.part10`)).size, 0);
    assert.equal((await fetch(selfDestruct, { method: 'DELETE' })).status, 204);
    assert.equal((await keysUnder(result.manifestKey)).size, 0);
  });

  it("cleans up one VM's objects only (vm1 but not vm10), and is safe to run twice", async () => {
    await new MockActivityEnvironment().run(activities.uploadImage, input('vm10', { concurrency: 4 }));
    const before10 = await keysUnder(`vmconvoy/${BATCH}/vm10/`);
    assert.equal(before10.size, 11);
    const beforeVm1 = await keysUnder(`vmconvoy/${BATCH}/vm1/`);
    assert.equal(beforeVm1.size, 12, '11 parts + manifest');

    const first = await new MockActivityEnvironment().run(activities.cleanupVm, { batch: BATCH, vm: 'vm1' });
    assert.deepEqual(first, { deletedObjects: 12, cancelledTask: false });
    assert.equal((await keysUnder(`vmconvoy/${BATCH}/vm1/`)).size, 0);
    assert.deepEqual(await keysUnder(`vmconvoy/${BATCH}/vm10/`), before10, "vm10's objects are untouched");

    const second = await new MockActivityEnvironment().run(activities.cleanupVm, { batch: BATCH, vm: 'vm1' });
    assert.deepEqual(second, { deletedObjects: 0, cancelledTask: false });
  });

  it('loads the inventory pages the CLI stored, and refuses a page changed in the bucket (non-retryable, says what to do)', async () => {
    const inventoryKey = inventoryKeyFor('vmconvoy/', 'batch-inventory');
    const spec = vmSpecSchema.parse({
      name: 'web-1',
      image: '/images/web-1.vmdk',
      architecture: 'x86_64',
      instanceType: 'm3.medium',
    });
    await storeInventory(s3.client, s3.bucket, inventoryKey, [{ row: 0, line: 2, spec }]);
    const env = new MockActivityEnvironment();
    assert.deepEqual(await env.run(activities.loadInventoryPage, { inventoryKey, page: 0 }), [
      { row: 0, line: 2, spec },
    ]);

    const tampered: Array<[string, string]> = [
      ['a row with a field the CLI never writes', JSON.stringify([{ row: 0, line: 2, spec, extra: 1 }])],
      [
        'a VM name that breaks object keys',
        JSON.stringify([{ row: 0, line: 2, spec: { ...spec, name: '../../etc' } }]),
      ],
      ['not JSON', '{"row": 0, '],
    ];
    for (const [what, body] of tampered) {
      await s3.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: `${inventoryKey}page-000000.json`, Body: body })
      );
      await assert.rejects(env.run(activities.loadInventoryPage, { inventoryKey, page: 0 }), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure, what);
        assert.equal(err.type, 'InventoryInvalid', what);
        assert.equal(err.nonRetryable, true, what);
        assert.match(err.message, /page-000000\.json/, what);
        assert.match(err.message, /vmconvoy start/, what);
        return true;
      });
    }
    // The index that finds a row's page, changed in the bucket: the same verdict.
    await storeInventory(s3.client, s3.bucket, inventoryKey, [{ row: 0, line: 2, spec }]);
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: `${inventoryKey}index.json`, Body: '{"rows": "all"}' })
    );
    await assert.rejects(env.run(activities.loadInventoryPage, { inventoryKey, page: 0, row: 0 }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'InventoryInvalid');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /index\.json/);
      return true;
    });
  });
});
