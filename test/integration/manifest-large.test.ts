/**
 * A 2 TiB image's manifest with session-token presigned URLs is over 1 GB: longer than V8's longest string.
 * It is written to the real S3 server as a stream and read back as one, never held whole in memory.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { XMLParser } from 'fast-xml-parser';
import { MANIFEST_TAIL_XML, writeManifest } from '../../activities/manifest';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import { manifestKey, partKey } from '../../common/object-keys';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, startS3 } from '../helpers/testbed';

const TiB = 1024 ** 4;
const PART = 10 * 1024 * 1024;

let s3: TestS3;
before(async () => {
  s3 = await startS3();
});
after(async () => s3?.stop());

/** Reads `<tag>` out of one part element. */
function field(part: string, tag: string): string {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(part);
  assert.ok(match, `no <${tag}> in ${part.slice(0, 200)}`);
  return match[1]!;
}

test('a 2 TiB manifest with 1.1 KB session tokens is streamed to S3 and reads back part by part', async () => {
  const sessionToken = randomBytes(825).toString('base64'); // 1,100 characters, with + / = to encode
  const config = localAwsConfig(s3);
  // The URLs carry the token; the server here knows only the plain keys, so the writes go without one.
  const signing = createAwsClients({ ...config, sessionToken });
  const writing = createAwsClients(config);
  const input = {
    batch: 'big',
    vm: 'db-2tib',
    format: 'VMDK' as const,
    imageBytes: 2 * TiB,
    volumeSizeGib: 2048,
    partSizeBytes: PART,
    validUntil: new Date(Date.now() + 24 * 3600_000).toISOString(),
  };
  const parts = Math.ceil((2 * TiB) / PART);
  const started = Date.now();
  try {
    const result = await writeManifest(
      { s3: writing.s3, presigner: signing.presigner, bucket: s3.bucket, keyPrefix: config.keyPrefix },
      input
    );
    const writeSeconds = (Date.now() - started) / 1000;
    const key = manifestKey(config.keyPrefix, input);
    assert.equal(result.manifestKey, key);

    const size = (await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))).ContentLength ?? 0;
    assert.ok(size > constants.MAX_STRING_LENGTH, `${size} bytes: more than one string can hold`);
    const uploads = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload left open');

    // Read it back as a stream: the head, every part in order, the tail.
    const body = (await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body as Readable;
    let carry = '';
    let head: string | undefined;
    let seen = 0;
    let nextStart = 0;
    let firstPart = '';
    let lastPart = '';
    let bytes = 0;
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      carry += (chunk as Buffer).toString('latin1');
      if (head === undefined) {
        const at = carry.indexOf('<part ');
        if (at < 0) continue;
        head = carry.slice(0, at);
        carry = carry.slice(at);
      }
      let end: number;
      while ((end = carry.indexOf('</part>\n')) >= 0) {
        const part = carry.slice(0, end + '</part>\n'.length);
        carry = carry.slice(part.length).replace(/^\s+(?=<part )/, '');
        const [, index, start, last] =
          /<part index="(\d+)">\s*<byte-range start="(\d+)" end="(\d+)"\/>/.exec(part) ?? [];
        assert.equal(Number(index), seen, 'parts in order');
        assert.equal(Number(start), nextStart, `part ${seen} starts where the previous ended`);
        nextStart = Number(last) + 1;
        if (seen === 0) firstPart = part;
        lastPart = part;
        seen++;
      }
    }
    assert.equal(bytes, size);
    assert.equal(seen, parts);
    assert.equal(nextStart, 2 * TiB, 'the byte ranges cover the image exactly');
    assert.equal(carry.replace(/^\s+/, '    '), MANIFEST_TAIL_XML.replace(/^\s+/, '    '));

    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false });
    const top = parser.parse(`${head}</parts></import></manifest>`) as {
      manifest: { 'file-format': string; import: { size: string; 'volume-size': string; parts: { count: string } } };
    };
    assert.equal(top.manifest['file-format'], 'VMDK');
    assert.equal(Number(top.manifest.import.size), 2 * TiB);
    assert.equal(Number(top.manifest.import.parts.count), parts);
    for (const [part, index] of [
      [firstPart, 0],
      [lastPart, parts - 1],
    ] as const) {
      assert.equal(field(part, 'key'), partKey(config.keyPrefix, input, index));
      const url = new URL(field(part, 'get-url').replaceAll('&amp;', '&'));
      assert.equal(url.searchParams.get('X-Amz-Security-Token'), sessionToken, 'the session token in every URL');
      assert.ok(url.pathname.endsWith(partKey(config.keyPrefix, input, index)));
    }
    const parsedLast = parser.parse(lastPart) as { part: { 'byte-range': { end: string } } };
    assert.equal(Number(parsedLast.part['byte-range'].end), 2 * TiB - 1);
    console.log(
      `manifest: ${parts} parts, ${(size / 1e9).toFixed(2)} GB written in ${writeSeconds.toFixed(1)} s, read back in ${((Date.now() - started) / 1000 - writeSeconds).toFixed(1)} s`
    );
  } finally {
    destroyAwsClients(signing);
    destroyAwsClients(writing);
  }
});
