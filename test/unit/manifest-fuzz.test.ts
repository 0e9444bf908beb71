/**
 * Property-based tests of the manifest writer (fast-check): for any image size, part size, key prefix and
 * VM name (XML-special characters included), the manifest parses — read back by the simulator's reader,
 * written independently of the writer — its byte ranges cover the image exactly once, and it passes the
 * checks EC2 makes before converting. Bad sizes are refused with a clear error, never a broken manifest.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { buildManifestXml } from '../../activities/manifest';
import { partKey, partRanges } from '../../common/object-keys';
import { checkManifest, parseManifest } from '../../sim/conversion/manifest';

const SEED = Number(process.env.VMCONVOY_FUZZ_SEED ?? Date.now() % 2 ** 31);
console.log(`[fuzz] manifest seed ${SEED}`);

const GIB = 1024 ** 3;
// Names and prefixes with what XML must escape; URLs with query strings full of & and =.
const textArb = fc.string({
  unit: fc.constantFrom('a', '<', '>', '&', '"', "'", '/', '-', '_', '.', 'é'),
  minLength: 1,
  maxLength: 20,
});

const manifestCase = fc.record({
  // Up to 2 TiB (the largest boot volume ImportInstance accepts) with sizes near part boundaries likely.
  imageBytes: fc.oneof(fc.integer({ min: 1, max: 64 * 1024 * 1024 }), fc.integer({ min: 1, max: 2 * 1024 * GIB })),
  partSizeBytes: fc.oneof(
    fc.constantFrom(5 * 1024 * 1024, 10 * 1024 * 1024, 100 * 1024 * 1024),
    fc.integer({ min: 1024 * 1024, max: 512 * 1024 * 1024 })
  ),
  format: fc.constantFrom('VMDK' as const, 'VHD' as const, 'RAW' as const),
  keyPrefix: textArb,
  batch: textArb,
  vm: textArb,
  query: textArb,
});

test('every manifest parses, its parts cover the image exactly once, and EC2 would accept it', () => {
  fc.assert(
    fc.property(manifestCase, (c) => {
      // At most 200 parts, so 3,000 runs stay quick; the range logic does not depend on the count.
      fc.pre(c.imageBytes / c.partSizeBytes <= 200);
      const volumeSizeGib = Math.max(8, Math.ceil(c.imageBytes / GIB));
      const ranges = partRanges(c.imageBytes, c.partSizeBytes);
      const url = (key: string, verb: string) =>
        `https://bucket.s3.amazonaws.com/${encodeURIComponent(key)}?X-Amz-Signature=${verb}&q=${encodeURIComponent(c.query)}`;
      const parts = ranges.map((r) => {
        const key = partKey(c.keyPrefix, { batch: c.batch, vm: c.vm }, r.index);
        return {
          index: r.index,
          start: r.start,
          end: r.end,
          key,
          headUrl: url(key, 'HEAD'),
          getUrl: url(key, 'GET'),
          deleteUrl: url(key, 'DELETE'),
        };
      });
      const xml = buildManifestXml({
        format: c.format,
        imageBytes: c.imageBytes,
        volumeSizeGib,
        selfDestructUrl: url('manifest', 'DELETE'),
        parts,
      });
      const m = parseManifest(xml);
      assert.equal(m.size, c.imageBytes);
      assert.equal(m.volumeSize, volumeSizeGib);
      assert.equal(m.fileFormat, c.format);
      assert.equal(m.parts.length, Math.ceil(c.imageBytes / c.partSizeBytes));
      let next = 0;
      for (const [i, p] of m.parts.entries()) {
        assert.equal(p.index, i);
        assert.equal(p.start, next, `part ${i} continues where the previous ended`);
        assert.ok(p.end >= p.start && p.end - p.start + 1 <= c.partSizeBytes);
        assert.equal(p.key, parts[i]!.key, 'keys survive XML escaping');
        assert.equal(p.getUrl, parts[i]!.getUrl, 'URLs survive XML escaping');
        next = p.end + 1;
      }
      assert.equal(next, c.imageBytes, 'the last part ends at the last byte');
      assert.equal(checkManifest(m, { format: c.format, bytes: c.imageBytes, volumeSizeGib }), undefined);
    }),
    { numRuns: 3000, seed: SEED }
  );
});

test('sizes that cannot make a manifest are refused with what was wrong', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ max: 0 }),
        fc.double({ noInteger: true, noNaN: true }),
        fc.constant(Number.NaN),
        fc.constant(2 ** 60)
      ),
      fc.integer({ min: 1, max: 1024 }),
      (bad, good) => {
        assert.throws(() => partRanges(bad, good), /image size must be a positive integer/);
        assert.throws(() => partRanges(good, bad), /part size must be a positive integer/);
      }
    ),
    { numRuns: 1000, seed: SEED + 1 }
  );
});
