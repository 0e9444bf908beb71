import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, open, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectImage, preflight, volumeSizeGib } from '../../activities/disk-image';
import { tempDir } from '../helpers/testbed';
import type { ImageKind } from '../helpers/images';
import { makeImage } from '../helpers/images';
import type { VmSpecInput } from '../../workflows/types';
import { vmSpecSchema } from '../../workflows/types';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function spec(image: string, extra: Partial<VmSpecInput> = {}) {
  return vmSpecSchema.parse({ name: 'vm1', image, architecture: 'x86_64', instanceType: 'm3.medium', ...extra });
}

async function rejectsWith(promise: Promise<unknown>, type: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, type, err.message);
    assert.equal(err.nonRetryable, true);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** Overwrites `bytes` at `offset` in a file. */
async function patch(file: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

describe('disk image pre-flight', () => {
  let tmp: { dir: string; remove(): Promise<void> };
  let dir: string;
  const images = new Map<ImageKind, string>();

  before(async () => {
    tmp = await tempDir('vmconvoy-preflight-');
    dir = tmp.dir;
    const kinds: ImageKind[] = [
      'stream-vmdk',
      'sparse-vmdk',
      'fixed-vhd',
      'dynamic-vhd',
      'differencing-vhd',
      'raw',
      'vhdx',
      'qcow2',
    ];
    for (const kind of kinds)
      images.set(kind, await makeImage(dir, `${kind}.img`, kind, { virtualMiB: 64, randomMiB: 4 }));
  });
  after(() => tmp.remove());

  const accepted: Array<[ImageKind, string, string]> = [
    ['stream-vmdk', 'VMDK', 'stream-optimized VMDK'],
    ['fixed-vhd', 'VHD', 'fixed VHD'],
    ['dynamic-vhd', 'VHD', 'dynamic VHD'],
    ['raw', 'RAW', 'RAW disk'],
  ];
  for (const [kind, format, label] of accepted) {
    it(`accepts a ${kind} as ${format} with its 64 MiB virtual size`, async () => {
      const file = images.get(kind)!;
      const result = await preflight(spec(file), { qemuImg: false });
      assert.equal(result.format, format);
      assert.equal(result.kind, label);
      assert.equal(result.virtualBytes, 64 * MiB);
      assert.equal(result.volumeSizeGib, 8);
      const { size } = await (await open(file)).stat();
      assert.equal(result.imageBytes, size);
    });
  }

  it('agrees with qemu-img on the virtual size of every accepted kind', async () => {
    for (const [kind] of accepted) {
      const info = await inspectImage(images.get(kind)!, { qemuImg: 'qemu-img' });
      assert.equal(info.virtualBytes, 64 * MiB, kind);
    }
  });

  const rejected: Array<[ImageKind, RegExp, RegExp]> = [
    [
      'sparse-vmdk',
      /monolithicSparse VMDK/,
      /qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized \S+sparse-vmdk\.img \S+-stream\.vmdk/,
    ],
    ['differencing-vhd', /differencing VHD/, /qemu-img convert -f vpc -O vpc -o subformat=fixed/],
    ['vhdx', /VHDX/, /qemu-img convert -f vhdx -O vpc -o subformat=fixed/],
    ['qcow2', /qcow2/, /qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized/],
  ];
  for (const [kind, what, fix] of rejected) {
    it(`rejects a ${kind} as ImageFormatUnsupported with the command that converts it`, async () => {
      await rejectsWith(preflight(spec(images.get(kind)!), { qemuImg: false }), 'ImageFormatUnsupported', what, fix);
    });
  }

  it('fills in an absent format and rejects a declared format that differs from the detected one', async () => {
    const file = images.get('dynamic-vhd')!;
    assert.equal((await preflight(spec(file), { qemuImg: false })).format, 'VHD');
    assert.equal((await preflight(spec(file, { format: 'VHD' }), { qemuImg: false })).format, 'VHD');
    await rejectsWith(
      preflight(spec(file, { format: 'VMDK' }), { qemuImg: false }),
      'ImageFormatMismatch',
      /declared as VMDK/,
      /Set format to VHD/
    );
  });

  it('uses the inventory volume size when it is large enough and refuses a smaller one', async () => {
    assert.equal(
      (await preflight(spec(images.get('raw')!, { volumeSizeGib: 20 }), { qemuImg: false })).volumeSizeGib,
      20
    );
    assert.equal(volumeSizeGib(10 * GiB + 1, undefined, 'x'), 11);
    assert.equal(volumeSizeGib(3 * GiB, undefined, 'x'), 8);
    assert.throws(
      () => volumeSizeGib(10 * GiB + 1, 10, 'x'),
      (err: unknown) =>
        err instanceof ApplicationFailure && err.type === 'InvalidVolumeSize' && /at least 11/.test(err.message)
    );
  });

  it('rejects a dynamic VHD cut short (no footer at the end)', async () => {
    const file = path.join(dir, 'cut-dynamic.vhd');
    execFileSync('cp', [images.get('dynamic-vhd')!, file]);
    await truncate(file, 2 * MiB);
    await rejectsWith(
      preflight(spec(file), { qemuImg: false }),
      'ImageUnreadable',
      /no footer at the end \(truncated\)/
    );
  });

  it('rejects a dynamic VHD whose block table points past a cut end even if a footer was appended', async () => {
    const source = images.get('dynamic-vhd')!;
    const file = path.join(dir, 'short-blocks.vhd');
    execFileSync('cp', [source, file]);
    const handle = await open(file, 'r+');
    const footer = Buffer.alloc(512);
    await handle.read(footer, 0, 512, 0);
    await handle.truncate(MiB);
    await handle.write(footer, 0, 512, MiB);
    await handle.close();
    await rejectsWith(preflight(spec(file), { qemuImg: false }), 'ImageUnreadable', /lies past the end of the file/);
  });

  it('rejects a fixed VHD with a byte missing, and one whose footer checksum is wrong', async () => {
    const short = path.join(dir, 'short-fixed.vhd');
    execFileSync('cp', [images.get('fixed-vhd')!, short]);
    await truncate(short, 64 * MiB + 511);
    await rejectsWith(preflight(spec(short), { qemuImg: false }), 'ImageUnreadable', /not a multiple of 512/);

    const bad = path.join(dir, 'bad-checksum.vhd');
    execFileSync('cp', [images.get('fixed-vhd')!, bad]);
    await patch(bad, 64 * MiB + 48, Buffer.from([0x7f])); // inside currentSize
    await rejectsWith(preflight(spec(bad), { qemuImg: false }), 'ImageUnreadable', /checksum/);
  });

  it('rejects a dynamic VHD whose two footer copies differ ("Footers not identical")', async () => {
    const file = path.join(dir, 'footers.vhd');
    execFileSync('cp', [images.get('dynamic-vhd')!, file]);
    await patch(file, 24, Buffer.from([1, 2, 3, 4])); // the timestamp of the copy at offset 0
    await rejectsWith(preflight(spec(file), { qemuImg: false }), 'ImageUnreadable', /Footers not identical/);
  });

  it('rejects a stream VMDK cut short, in the middle, in its last grain or mid-sector', async () => {
    const source = images.get('stream-vmdk')!;
    const { size } = await (await open(source)).stat();
    for (const [name, length] of [
      ['half.vmdk', Math.floor(size / 2 / 512) * 512],
      ['last-grain.vmdk', size - 1024],
      ['odd-length.vmdk', size - 100],
    ] as const) {
      const file = path.join(dir, name);
      execFileSync('cp', [source, file]);
      await truncate(file, length);
      await rejectsWith(preflight(spec(file), { qemuImg: false }), 'ImageUnreadable', /stream VMDK is truncated/);
    }
  });

  it('rejects a RAW disk with a GPT partition table (EC2: "No bootable partition found")', async () => {
    const file = path.join(dir, 'gpt.raw');
    execFileSync('cp', [images.get('raw')!, file]);
    await patch(file, 512, Buffer.from('EFI PART', 'latin1'));
    await rejectsWith(preflight(spec(file), { qemuImg: false }), 'ImageFormatUnsupported', /GPT/, /MBR/);
  });

  it('refuses a missing file, a relative path, a directory and an empty file', async () => {
    await rejectsWith(
      preflight(spec(path.join(dir, 'nope.vmdk')), { qemuImg: false }),
      'ImageNotFound',
      /does not exist/
    );
    await rejectsWith(preflight(spec('relative/disk.vmdk'), { qemuImg: false }), 'ImageNotFound', /not absolute/);
    await mkdir(path.join(dir, 'a-dir'));
    await rejectsWith(preflight(spec(path.join(dir, 'a-dir')), { qemuImg: false }), 'ImageUnreadable', /a directory/);
    await writeFile(path.join(dir, 'empty.raw'), '');
    await rejectsWith(preflight(spec(path.join(dir, 'empty.raw')), { qemuImg: false }), 'ImageUnreadable', /empty/);
  });

  it('refuses a FIFO without blocking on it', async () => {
    const fifo = path.join(dir, 'pipe.raw');
    execFileSync('mkfifo', [fifo]);
    await rejectsWith(preflight(spec(fifo), { qemuImg: false }), 'ImageUnreadable', /FIFO/);
  });

  it('refuses a symlink that leaves the image roots but follows one that stays inside', async () => {
    const root = path.join(dir, 'root');
    await mkdir(root);
    const escaping = path.join(root, 'escape.raw');
    await symlink(images.get('raw')!, escaping);
    await rejectsWith(
      preflight(spec(escaping), { imageRoots: [root], qemuImg: false }),
      'ImageOutsideRoots',
      /outside the allowed image roots/,
      /resolves to/
    );
    await rejectsWith(preflight(spec(images.get('raw')!), { imageRoots: [root], qemuImg: false }), 'ImageOutsideRoots');

    const inside = path.join(root, 'disk.raw');
    execFileSync('cp', [images.get('raw')!, inside]);
    const link = path.join(root, 'link.raw');
    await symlink(inside, link);
    assert.equal((await preflight(spec(link), { imageRoots: [root], qemuImg: false })).format, 'RAW');
    // A sibling folder whose name merely starts with the root's name is not inside it.
    const sibling = `${root}-other`;
    await mkdir(sibling);
    execFileSync('cp', [images.get('raw')!, path.join(sibling, 'disk.raw')]);
    await rejectsWith(
      preflight(spec(path.join(sibling, 'disk.raw')), { imageRoots: [root], qemuImg: false }),
      'ImageOutsideRoots'
    );
  });
});
