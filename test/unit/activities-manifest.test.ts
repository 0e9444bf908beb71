import packageJson from '../../package.json';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { XMLParser } from 'fast-xml-parser';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import type { ManifestPart } from '../../activities/manifest';
import { buildManifestXml } from '../../activities/manifest';
import { manifestKey, partKey, partRanges, vmPrefix } from '../../common/object-keys';
import { computeUrlExpiry, MAX_PRESIGN_SECONDS } from '../../activities/url-expiry';

const MiB = 1024 * 1024;

interface ParsedPart {
  index: string;
  'byte-range': { start: string; end: string };
  key: string;
  'head-url': string;
  'get-url': string;
  'delete-url': string;
}

function parse(xml: string) {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseTagValue: false,
    parseAttributeValue: false,
    isArray: (name) => name === 'part',
  });
  return parser.parse(xml) as {
    manifest: {
      version: string;
      'file-format': string;
      importer: { name: string; version: string; release: string };
      'self-destruct-url': string;
      import: { size: string; 'volume-size': string; parts: { count: string; part: ParsedPart[] } };
    };
  };
}

/** Fake presigned URLs with the `&`-separated query strings real ones have. */
function partsFor(imageBytes: number, partSize: number): ManifestPart[] {
  const loc = { batch: 'b1', vm: 'vm1' };
  return partRanges(imageBytes, partSize).map((r) => {
    const key = partKey('vmconvoy/', loc, r.index);
    const url = (verb: string) =>
      `http://127.0.0.1:9000/bucket/${key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${verb}${r.index}&x-id=${verb}`;
    return { ...r, key, headUrl: url('head'), getUrl: url('get'), deleteUrl: url('delete') };
  });
}

describe('VM Import manifest', () => {
  const cases: Array<[string, number, number]> = [
    ['a multiple of the part size', 40 * MiB, 4 * MiB],
    ['a partial last part', 40 * MiB + 12345, 4 * MiB],
    ['one part smaller than the part size', 1000, 10 * MiB],
    ['the AWS sample (12,595,200 bytes in 10 MiB parts)', 12_595_200, 10 * MiB],
  ];
  for (const [label, imageBytes, partSize] of cases) {
    it(`lists contiguous inclusive byte ranges covering the image exactly: ${label}`, () => {
      const parts = partsFor(imageBytes, partSize);
      const xml = buildManifestXml({
        format: 'VMDK',
        imageBytes,
        volumeSizeGib: 8,
        selfDestructUrl: 'http://s3/b/m?a=1&b=2',
        parts,
      });
      const { manifest } = parse(xml);
      const listed = manifest.import.parts.part;
      assert.equal(Number(manifest.import.parts.count), Math.ceil(imageBytes / partSize));
      assert.equal(listed.length, Number(manifest.import.parts.count));
      assert.equal(Number(manifest.import.size), imageBytes);
      let next = 0;
      for (const [i, part] of listed.entries()) {
        assert.equal(Number(part.index), i);
        const start = Number(part['byte-range'].start);
        const end = Number(part['byte-range'].end);
        assert.equal(start, next, `part ${i} starts where the previous ended`);
        assert.ok(end >= start);
        assert.ok(end - start + 1 <= partSize);
        next = end + 1;
      }
      assert.equal(next, imageBytes, 'the last inclusive end is size - 1');
    });
  }

  it('matches the AWS sample ranges 0-10485759 and 10485760-12595199', () => {
    const ranges = partRanges(12_595_200, 10 * MiB).map((r) => [r.start, r.end]);
    assert.deepEqual(ranges, [
      [0, 10485759],
      [10485760, 12595199],
    ]);
  });

  it('writes the header, the elements in the documented order and escapes & in URLs', () => {
    const parts = partsFor(5 * MiB, 4 * MiB);
    const xml = buildManifestXml({
      format: 'RAW',
      imageBytes: 5 * MiB,
      volumeSizeGib: 9,
      selfDestructUrl: 'http://s3/b/manifest.xml?X-Amz-A=1&X-Amz-B=2',
      parts,
    });
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<manifest>'));
    const order = [
      '<version>',
      '<file-format>',
      '<importer>',
      '<self-destruct-url>',
      '<import>',
      '<size>',
      '<volume-size>',
      '<parts count="2">',
    ];
    const positions = order.map((tag) => xml.indexOf(tag));
    assert.ok(
      positions.every((p) => p >= 0),
      'every element present'
    );
    assert.deepEqual(
      [...positions].sort((a, b) => a - b),
      positions,
      'in order'
    );
    assert.ok(!/&(?!amp;|lt;|gt;|quot;|apos;)/.test(xml), 'no bare & left');
    assert.match(xml, /X-Amz-A=1&amp;X-Amz-B=2/);

    const { manifest } = parse(xml);
    assert.equal(manifest.version, '2010-11-15');
    assert.equal(manifest['file-format'], 'RAW');
    assert.deepEqual(manifest.importer, { name: 'vmconvoy', version: packageJson.version, release: '2010-11-15' });
    assert.equal(manifest['self-destruct-url'], 'http://s3/b/manifest.xml?X-Amz-A=1&X-Amz-B=2');
    assert.equal(manifest.import['volume-size'], '9');
    const first = manifest.import.parts.part[0]!;
    assert.equal(first.key, 'vmconvoy/b1/vm1/image.part0');
    assert.equal(first['get-url'], parts[0]!.getUrl, 'URLs round-trip unchanged');
    assert.equal(first['head-url'], parts[0]!.headUrl);
    assert.equal(first['delete-url'], parts[0]!.deleteUrl);
  });

  it('keeps each VM in its own folder: vm1 never prefixes vm10', () => {
    const vm1 = vmPrefix('p/', { batch: 'b', vm: 'vm1' });
    assert.equal(vm1, 'p/b/vm1/');
    assert.ok(!partKey('p/', { batch: 'b', vm: 'vm10' }, 0).startsWith(vm1));
    assert.equal(manifestKey('p/', { batch: 'b', vm: 'vm1' }), 'p/b/vm1/manifest.xml');
  });

  it('rejects nonsense sizes instead of producing an empty manifest', () => {
    assert.throws(() => partRanges(0, MiB), RangeError);
    assert.throws(() => partRanges(10, 0), RangeError);
  });
});

describe('presigned URL expiry', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('lasts until validUntil when that is within 7 days and the credentials outlive it', () => {
    const e = computeUrlExpiry('2026-01-02T00:00:00Z', undefined, now);
    assert.equal(e.expiresInSeconds, 24 * 3600);
    assert.equal(e.expiresAt.toISOString(), '2026-01-02T00:00:00.000Z');
    assert.deepEqual(e.warnings, []);
  });
  it('caps at 7 days with a warning', () => {
    const e = computeUrlExpiry('2026-02-01T00:00:00Z', undefined, now);
    assert.equal(e.expiresInSeconds, MAX_PRESIGN_SECONDS);
    assert.equal(e.warnings.length, 1);
    assert.match(e.warnings[0]!, /7 days/);
  });
  it('stops at the expiry of temporary credentials and warns', () => {
    const e = computeUrlExpiry('2026-01-02T00:00:00Z', new Date('2026-01-01T06:00:00Z'), now);
    assert.equal(e.expiresInSeconds, 6 * 3600);
    assert.match(e.warnings.join(' '), /temporary and expire at 2026-01-01T06:00:00.000Z/);
  });
});

describe('presigned URLs', () => {
  const clients = createAwsClients({
    region: 'us-east-1',
    bucket: 'stage',
    keyPrefix: 'p/',
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'secret',
    s3Endpoint: 'http://127.0.0.1:9000',
    maxAttempts: 3,
  });
  after(() => destroyAwsClients(clients));

  it('are path-style for a custom endpoint, expire as asked and carry no checksum parameters', async () => {
    const [url] = await clients.presigner.presignMany('GET', 'stage', ['p/b/vm1/image.part0'], 3600);
    const single = await clients.presigner.presign(
      new GetObjectCommand({ Bucket: 'stage', Key: 'p/b/vm1/image.part0' }),
      3600
    );
    for (const u of [url!, single]) {
      const parsed = new URL(u);
      assert.equal(parsed.host, '127.0.0.1:9000');
      assert.equal(parsed.pathname, '/stage/p/b/vm1/image.part0');
      assert.equal(parsed.searchParams.get('X-Amz-Expires'), '3600');
      assert.ok(parsed.searchParams.get('X-Amz-Signature'));
      assert.doesNotMatch(u, /checksum/i);
    }
  });

  it('sign one URL per key, each different', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `p/b/vm1/image.part${i}`);
    const urls = await clients.presigner.presignMany('DELETE', 'stage', keys, 600);
    assert.equal(urls.length, 50);
    assert.equal(new Set(urls.map((u) => new URL(u).searchParams.get('X-Amz-Signature'))).size, 50);
    urls.forEach((u, i) => assert.equal(new URL(u).pathname, `/stage/${keys[i]}`));
  });
});
