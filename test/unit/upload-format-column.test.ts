/**
 * The inventory's `upload_format` column (issue 19): empty leaves the batch's choice, `as-is` and
 * `stream-optimized` (any case) are taken, anything else is a problem on that column saying what to write;
 * the workflow's choice follows row over batch over the default, and only for RAW and fixed VHD images.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLUMNS, rowToSpec } from '../../client/inventory/columns';
import type { PreflightResult } from '../../common/contracts/activity-io';
import { DEFAULT_SETTINGS } from '../../common/contracts/migration';
import { streamOptimizedUpload } from '../../workflows/stream-upload';

const ROW = { name: 'vm1', image: '/images/vm1.raw', architecture: 'x86_64', instance_type: 't2.micro' };

describe('upload_format column', () => {
  it('is a column of the inventory', () => {
    assert.ok((COLUMNS as readonly string[]).includes('upload_format'));
  });

  it('empty: no choice on the row (the batch decides)', () => {
    const r = rowToSpec(ROW, '/');
    assert.deepEqual(r.problems, []);
    assert.equal(r.spec?.uploadFormat, undefined);
  });

  it('takes as-is and stream-optimized, in any case', () => {
    assert.equal(rowToSpec({ ...ROW, upload_format: 'AS-IS' }, '/').spec?.uploadFormat, 'as-is');
    assert.equal(rowToSpec({ ...ROW, upload_format: 'stream-optimized' }, '/').spec?.uploadFormat, 'stream-optimized');
  });

  it('refuses anything else on its column, saying what to write', () => {
    const r = rowToSpec({ ...ROW, upload_format: 'gzip' }, '/');
    assert.equal(r.spec, undefined);
    assert.deepEqual(r.problems, [
      {
        column: 'upload_format',
        message: `"gzip": use stream-optimized or as-is (or leave it empty for the batch's choice)`,
      },
    ]);
  });
});

describe("the workflow's choice (outside a workflow, patched() is not reached for as-is or other formats)", () => {
  const image = (over: Partial<PreflightResult>): PreflightResult => ({
    format: 'RAW',
    kind: 'RAW disk',
    imageBytes: 1 << 20,
    virtualBytes: 1 << 20,
    volumeSizeGib: 8,
    ...over,
  });
  const spec = rowToSpec(ROW, '/').spec!;
  const asIs = rowToSpec({ ...ROW, upload_format: 'as-is' }, '/').spec!;
  it('as-is on the row or the batch, a dynamic VHD, a VMDK, an OVA disk or a converted image: sent as it is', () => {
    assert.equal(streamOptimizedUpload(asIs, DEFAULT_SETTINGS, image({})), undefined);
    assert.equal(streamOptimizedUpload(spec, { ...DEFAULT_SETTINGS, uploadFormat: 'as-is' }, image({})), undefined);
    assert.equal(
      streamOptimizedUpload(spec, DEFAULT_SETTINGS, image({ format: 'VHD', kind: 'dynamic VHD' })),
      undefined
    );
    assert.equal(streamOptimizedUpload(spec, DEFAULT_SETTINGS, image({ format: 'VMDK', kind: 'VMDK' })), undefined);
    assert.equal(streamOptimizedUpload(spec, DEFAULT_SETTINGS, image({ format: 'VMDK', imageOffset: 512 })), undefined);
  });
});
