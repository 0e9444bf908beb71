import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectImage, preflight, volumeSizeGib } from '../../activities/disk-image/preflight';
import { tempDir } from '../helpers/testbed';
import type { ImageKind } from '../helpers/images';
import { makeImage, patchFile, rewriteVhdDynamicHeader, rewriteVhdFooters } from '../helpers/images';
import type { VmSpecInput } from '../../common/contracts/migration';
import { vmSpecSchema } from '../../common/contracts/migration';

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
    ['differencing-vhd', /differencing VHD/, /qemu-img convert -f vpc -O vpc -o subformat=fixed/],
  ];
  for (const [kind, what, fix] of rejected) {
    it(`rejects a ${kind} as ImageFormatUnsupported with the command that converts it`, async () => {
      await rejectsWith(preflight(spec(images.get(kind)!), { qemuImg: false }), 'ImageFormatUnsupported', what, fix);
    });
  }

  // Converted on the site worker into a stream-optimized VMDK (activities/convert-image.ts).
  const converted: Array<[ImageKind, string, string, RegExp]> = [
    ['sparse-vmdk', 'VMDK', 'vmdk', /monolithicSparse VMDK/],
    ['vhdx', 'VHDX', 'vhdx', /VHDX image/],
    ['qcow2', 'QCOW2', 'qcow2', /qcow2 \(v3\) image/],
  ];
  for (const [kind, sourceFormat, qemuFormat, label] of converted) {
    it(`plans a ${kind} for conversion on the site, with the scratch space it needs`, async () => {
      const result = await preflight(spec(images.get(kind)!), { qemuImg: false });
      assert.equal(result.format, 'VMDK');
      assert.equal(result.sourceFormat, sourceFormat);
      assert.match(result.kind, label);
      assert.equal(result.virtualBytes, 64 * MiB);
      assert.equal(result.conversion?.qemuFormat, qemuFormat);
      // 4 MiB of random data (a VHDX measures as fully allocated: its whole 64 MiB), plus the VMDK's overhead.
      const data = kind === 'vhdx' ? 64 * MiB : 4 * MiB;
      assert.ok(result.conversion.scratchBytes >= data && result.conversion.scratchBytes < data * 1.1 + 2 * MiB);
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

/** Little-endian u64 / u32 fields, to overwrite VMDK header fields. */
const u64le = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const u32le = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
/** Offsets in the VMDK sparse extent header (activities/disk-image/vmdk-header.ts). */
const VMDK = {
  version: 4,
  capacity: 12,
  grainSize: 20,
  descriptorOffset: 28,
  numGTEsPerGT: 44,
  gdOffset: 56,
  overHead: 64,
};

/**
 * Files an operator (or an attacker) can put where an image should be. Each must be refused at pre-flight
 * with a message that names the file, what is wrong and what to do, and without blocking or reading
 * forever. These run the production defaults (qemu-img cross-check included).
 */
describe('hostile images', () => {
  let tmp: { dir: string; remove(): Promise<void> };
  let dir: string;
  let root: string;
  const sources = new Map<ImageKind, string>();
  let n = 0;

  before(async () => {
    tmp = await tempDir('vmconvoy-hostile-');
    dir = tmp.dir;
    root = path.join(dir, 'root');
    await mkdir(root);
    for (const kind of ['stream-vmdk', 'sparse-vmdk', 'fixed-vhd', 'dynamic-vhd'] as const)
      sources.set(kind, await makeImage(dir, `${kind}.src`, kind, { virtualMiB: 16, randomMiB: 2 }));
  });
  after(() => tmp.remove());

  /** A fresh copy of a good image of `kind`, named `name`, to damage. */
  async function copyOf(kind: ImageKind, name: string): Promise<string> {
    const file = path.join(dir, `${n++}-${name}`);
    await copyFile(sources.get(kind)!, file);
    return file;
  }
  async function fileWith(name: string, content: Buffer | string): Promise<string> {
    const file = path.join(dir, `${n++}-${name}`);
    await writeFile(file, content);
    return file;
  }
  const escaped = (file: string): RegExp => new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

  describe('devices', () => {
    for (const device of ['/dev/zero', '/dev/null']) {
      it(`refuses ${device} as a device, without opening or reading it`, { timeout: 10_000 }, async () => {
        await rejectsWith(
          preflight(spec(device)),
          'ImageUnreadable',
          new RegExp(`^Disk image ${device} is a device, not a regular file\\.`),
          /Point the inventory at the image file itself/
        );
        await rejectsWith(preflight(spec(device, { format: 'RAW' })), 'ImageUnreadable', /is a device/);
      });
    }

    it('refuses a symlink inside an image root that points at /dev/zero', { timeout: 10_000 }, async () => {
      const link = path.join(root, 'zero.vmdk');
      await symlink('/dev/zero', link);
      // No roots configured: the link is followed and the device refused.
      await rejectsWith(
        preflight(spec(link)),
        'ImageUnreadable',
        new RegExp(`${escaped(link).source} \\(it resolves to /dev/zero\\) is a device, not a regular file`)
      );
      // Roots configured: it leaves them, and the message says what it leads to.
      await rejectsWith(
        preflight(spec(link), { imageRoots: [root] }),
        'ImageOutsideRoots',
        /resolves to \/dev\/zero, a device\) is outside the allowed image roots/
      );
      // Even a root that contains /dev does not make a device an image.
      await rejectsWith(preflight(spec(link), { imageRoots: [root, '/dev'] }), 'ImageUnreadable', /is a device/);
    });
  });

  describe('wrong magic', () => {
    const notes = 'These are my notes, not a disk image.\n'.repeat(100);

    it('refuses a text file named disk.vmdk declared as VMDK, saying what it expected and found', async () => {
      const file = await fileWith('disk.vmdk', notes);
      await rejectsWith(
        preflight(spec(file, { format: 'VMDK' })),
        'ImageFormatMismatch',
        new RegExp(`^Disk image ${escaped(file).source} is declared as VMDK in the inventory but has no VMDK header`),
        /expected "KDMV" at offset 0, found "Thes" \(54 68 65 73\)/,
        /point the inventory at the right file/
      );
      // Not declared: the name says VMDK, so it is not taken for a RAW disk either.
      await rejectsWith(preflight(spec(file)), 'ImageFormatMismatch', /is named \*\.vmdk but has no VMDK header/);
    });

    it('refuses random bytes named disk.vmdk (declared or not), a whole number of sectors long', async () => {
      const bytes = randomBytes(MiB);
      bytes.write('RND!', 0, 'latin1'); // never "KDMV" by chance
      const file = await fileWith('random.vmdk', bytes);
      await rejectsWith(
        preflight(spec(file, { format: 'VMDK' })),
        'ImageFormatMismatch',
        /declared as VMDK/,
        /expected "KDMV" at offset 0, found "RND!" \(52 4e 44 21\)/
      );
      await rejectsWith(preflight(spec(file)), 'ImageFormatMismatch', /named \*\.vmdk/, /found "RND!"/);
      // Declared RAW, it is taken as RAW: the inventory wins over the name.
      assert.equal((await preflight(spec(file, { format: 'RAW' }), { qemuImg: false })).format, 'RAW');
    });

    it('refuses a file starting with "KDMV" whose header is garbage as a damaged VMDK header', async () => {
      const garbage = randomBytes(4 * 512);
      garbage.write('KDMV', 0, 'latin1');
      garbage.writeUInt32LE(0xdeadbeef, VMDK.version);
      const file = await fileWith('garbage.vmdk', garbage);
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /is damaged or incomplete: its VMDK header is not valid: version 3735928559 \(a VMDK header has version 1, 2 or 3\)/,
        /Copy or export the image again/
      );
      // Shorter than a header: not a crash on a short read.
      const stub = await fileWith('stub.vmdk', 'KDMV\x01\0\0\0');
      await rejectsWith(preflight(spec(stub)), 'ImageUnreadable', /shorter than a VMDK header \(8 bytes\)/);
    });

    it('refuses a real VMDK whose header fields are out of range, naming the field', async () => {
      const cases: Array<[string, number, Buffer, RegExp]> = [
        ['grain.vmdk', VMDK.grainSize, u64le(3n), /grain size 3 sectors \(a power of two up to 2097152\)/],
        ['gtes.vmdk', VMDK.numGTEsPerGT, u32le(1 << 20), /1048576 entries per grain table \(at most 512\)/],
        ['desc.vmdk', VMDK.descriptorOffset, u64le(1n << 60n), /embedded descriptor lies past the end of the file/],
      ];
      for (const [name, offset, bytes, message] of cases) {
        for (const kind of ['stream-vmdk', 'sparse-vmdk'] as const) {
          const file = await copyOf(kind, name);
          await patchFile(file, offset, bytes);
          await rejectsWith(preflight(spec(file)), 'ImageUnreadable', message, /VMDK header is not valid/);
        }
      }
    });

    it('refuses a file named .vhd whose last 512 bytes are not a "conectix" footer', async () => {
      const file = await copyOf('fixed-vhd', 'bad-cookie.vhd');
      const { size } = await (await open(file)).stat();
      await patchFile(file, size - 512, Buffer.from('c0nectix', 'latin1'));
      await rejectsWith(
        preflight(spec(file)),
        'ImageFormatMismatch',
        /is named \*\.vhd but has no VHD footer: expected "conectix" in the last 512 bytes, found "c0nectix" \(63 30 6e 65 63 74 69 78\)/
      );
      await rejectsWith(
        preflight(spec(file, { format: 'VHD' })),
        'ImageFormatMismatch',
        /declared as VHD in the inventory/
      );
      const random = await fileWith('random.vhd', randomBytes(MiB));
      await rejectsWith(preflight(spec(random)), 'ImageFormatMismatch', /no VHD footer: expected "conectix"/);
    });
  });

  describe('a declared size far larger than the file', () => {
    it('refuses a stream VMDK whose grain directory offset points far past the end of the file', async () => {
      const file = await copyOf('stream-vmdk', 'gd-far.vmdk');
      await patchFile(file, VMDK.gdOffset, u64le(1n << 40n));
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /stream VMDK is truncated \(the grain directory lies past the end of the file\)/,
        /Copy or export the image again/
      );
    });

    it('refuses a stream VMDK whose capacity claims 1 TiB but whose grain directory has room for 16 MiB', async () => {
      const file = await copyOf('stream-vmdk', 'capacity-1t.vmdk');
      await patchFile(file, VMDK.capacity, u64le(2n ** 31n)); // sectors: 1 TiB
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /a capacity of 1024 GiB needs a grain directory of 256 sectors at sector 26, which runs past the start of the data at sector 128/
      );
    });

    it('refuses a stream VMDK whose grain directory entries share one grain table', async () => {
      const file = await copyOf('stream-vmdk', 'shared-gt.vmdk');
      await patchFile(file, VMDK.capacity, u64le(131072n)); // 64 MiB: two grain tables, both in the metadata area
      const handle = await open(file);
      const header = Buffer.alloc(512);
      await handle.read(header, 0, 512, 0);
      const gdAt = Number(header.readBigUInt64LE(VMDK.gdOffset)) * 512;
      const gd = Buffer.alloc(4);
      await handle.read(gd, 0, 4, gdAt);
      await handle.close();
      await patchFile(file, gdAt + 4, gd); // entry 1 := entry 0
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        new RegExp(`grain directory entries 0 and 1 point at the same grain table \\(sector ${gd.readUInt32LE(0)}\\)`)
      );
    });

    it('refuses a stream VMDK whose data starts past the end of the file', async () => {
      const file = await copyOf('stream-vmdk', 'overhead.vmdk');
      await patchFile(file, VMDK.overHead, u64le(1n << 30n));
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /truncated \(its data starts at byte 549755813888, past the end of the/
      );
    });

    it('refuses a VMDK or RAW disk larger than EC2 imports (2 TiB)', async () => {
      for (const [capacity, gib] of [
        [2n ** 40n, 524288],
        [2n ** 63n, 4398046511104],
      ] as const) {
        const file = await copyOf('stream-vmdk', 'huge.vmdk');
        await patchFile(file, VMDK.capacity, u64le(capacity));
        await rejectsWith(
          preflight(spec(file)),
          'ImageFormatUnsupported',
          new RegExp(
            `its VMDK header declares a ${gib} GiB disk; EC2 ImportInstance imports boot volumes of at most 2048 GiB`
          ),
          /If the header is wrong, the image is damaged: copy or export it again/
        );
      }
      const raw = path.join(dir, 'huge.raw');
      await writeFile(raw, '');
      await truncate(raw, 3 * 1024 * GiB); // sparse
      await rejectsWith(
        preflight(spec(raw), { qemuImg: false }),
        'ImageFormatUnsupported',
        /^Disk image \S+huge\.raw: the RAW disk is 3072 GiB; EC2 ImportInstance imports boot volumes of at most 2048 GiB/,
        /shrink its partitions and the disk below 2 TiB inside the VM and export it again\.$/
      );
    });

    it('refuses a fixed VHD whose footer claims 1 TiB while the file holds 16 MiB', async () => {
      const file = await copyOf('fixed-vhd', 'fixed-1t.vhd');
      await rewriteVhdFooters(file, (f) => {
        f.writeBigUInt64BE(1n << 40n, 40);
        f.writeBigUInt64BE(1n << 40n, 48);
      });
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /is damaged or incomplete: the fixed VHD holds 16777216 data bytes but its footer says 1099511627776/,
        /Copy or export the image again/
      );
    });

    it('refuses a dynamic VHD whose footer claims more than its block table covers, or than a VHD can hold', async () => {
      const covered = await copyOf('dynamic-vhd', 'dyn-1t.vhd');
      await rewriteVhdFooters(covered, (f) => f.writeBigUInt64BE(1n << 40n, 48));
      await rejectsWith(
        preflight(spec(covered)),
        'ImageUnreadable',
        /its footer claims a 1024 GiB disk but its block table covers only 16 MiB \(8 blocks of 2 MiB\)/,
        /Copy or export the image again/
      );
      const huge = await copyOf('dynamic-vhd', 'dyn-4t.vhd');
      await rewriteVhdFooters(huge, (f) => f.writeBigUInt64BE(1n << 42n, 48));
      await rejectsWith(
        preflight(spec(huge)),
        'ImageUnreadable',
        /its footer claims a 4096 GiB disk, more than the 2040 GiB a VHD can hold/
      );
    });

    it('refuses a dynamic VHD whose block table claims 2^32-1 entries', async () => {
      const file = await copyOf('dynamic-vhd', 'dyn-bat.vhd');
      await rewriteVhdDynamicHeader(file, (h) => h.writeUInt32BE(0xffffffff, 28));
      await rejectsWith(
        preflight(spec(file)),
        'ImageUnreadable',
        /its block table declares 4294967295 blocks of 2 MiB, more than the 2040 GiB a VHD can hold/
      );
    });
  });

  describe('symlinks that lead nowhere', () => {
    it('refuses a dangling symlink as ImageNotFound, naming the missing target', async () => {
      const link = path.join(root, 'dangling.vmdk');
      const target = path.join(root, 'moved-away.vmdk');
      await symlink(target, link);
      await rejectsWith(
        preflight(spec(link), { imageRoots: [root] }),
        'ImageNotFound',
        new RegExp(`${escaped(link).source} is a symbolic link to ${escaped(target).source}, which does not exist`),
        /Fix the link/
      );
      // A chain: the message names the end that is missing.
      const chain = path.join(root, 'chain.vmdk');
      await symlink(link, chain);
      await rejectsWith(
        preflight(spec(chain)),
        'ImageNotFound',
        new RegExp(`link to ${escaped(target).source}, which does not exist`)
      );
    });

    it('refuses a symlink loop as ImageUnreadable without hanging', { timeout: 10_000 }, async () => {
      const a = path.join(root, 'loop-a.vmdk');
      const b = path.join(root, 'loop-b.vmdk');
      await symlink(b, a);
      await symlink(a, b);
      const self = path.join(root, 'self.vmdk');
      await symlink(self, self);
      for (const file of [a, self]) {
        await rejectsWith(
          preflight(spec(file), { imageRoots: [root] }),
          'ImageUnreadable',
          new RegExp(`${escaped(file).source} is a symbolic link that loops back on itself`),
          /Fix the link/
        );
      }
    });
  });
});
