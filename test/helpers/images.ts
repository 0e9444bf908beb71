/**
 * Real disk images made with qemu-img at test time (milliseconds each; no binary image is committed).
 * Each image carries some random data so uploads, ETags and conversions have real bytes to move.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export type ImageKind =
  'stream-vmdk' | 'sparse-vmdk' | 'fixed-vhd' | 'dynamic-vhd' | 'differencing-vhd' | 'raw' | 'vhdx' | 'qcow2';

export interface MakeImageOptions {
  /** Virtual size in MiB. @default 64 */
  virtualMiB?: number;
  /** Random bytes written at the start of the disk (so compressed formats stay non-trivial). @default 4 MiB */
  randomMiB?: number;
  /** Text written at offset 1 MiB + 512 of the raw disk, e.g. the simulator's failure marker. */
  marker?: string;
}

async function qemuImg(args: string[]): Promise<void> {
  await execFileAsync(process.env.QEMU_IMG ?? 'qemu-img', args);
}

/** A raw disk with random data (and an optional marker), the source every other kind is converted from. */
async function makeRaw(file: string, opts: MakeImageOptions): Promise<void> {
  const virtual = (opts.virtualMiB ?? 64) * 1024 * 1024;
  const handle = await open(file, 'w');
  try {
    await handle.truncate(virtual);
    const random = Math.min((opts.randomMiB ?? 4) * 1024 * 1024, virtual);
    // An MBR signature so the disk looks like a bootable RAW disk to anyone who checks.
    const data = randomBytes(random);
    if (data.length >= 512) {
      data[510] = 0x55;
      data[511] = 0xaa;
    }
    await handle.write(data, 0, data.length, 0);
    if (opts.marker) await handle.write(Buffer.from(`${opts.marker}\n`), 0, undefined, 512);
  } finally {
    await handle.close();
  }
}

/** Rewrites a VHD's diskType (offset 60 of the footer) in the footer at EOF and its copy at 0, checksums fixed. */
function setVhdDiskType(file: string, diskType: number): Promise<void> {
  return rewriteVhdFooters(file, (footer) => footer.writeUInt32BE(diskType, 60));
}

/** Makes `<dir>/<name>` of the given kind and returns its path. */
export async function makeImage(
  dir: string,
  name: string,
  kind: ImageKind,
  opts: MakeImageOptions = {}
): Promise<string> {
  const file = path.join(dir, name);
  const raw = kind === 'raw' ? file : path.join(dir, `${name}.src.raw`);
  await makeRaw(raw, opts);
  switch (kind) {
    case 'raw':
      break;
    case 'stream-vmdk':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, file]);
      break;
    case 'sparse-vmdk':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vmdk', raw, file]);
      break;
    case 'fixed-vhd':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed,force_size=on', raw, file]);
      break;
    case 'dynamic-vhd':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', raw, file]);
      break;
    case 'differencing-vhd':
      // qemu-img cannot create differencing VHDs, so mark a dynamic one as differencing (diskType 4) in both
      // footer copies, with valid checksums: exactly what a pre-flight sees in a real differencing disk.
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', raw, file]);
      await setVhdDiskType(file, 4);
      break;
    case 'vhdx':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'vhdx', raw, file]);
      break;
    case 'qcow2':
      await qemuImg(['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file]);
      break;
  }
  if (raw !== file) await rm(raw, { force: true });
  return file;
}

// ---------------------------------------------------------------------------------------------------
// Hostile images: real images damaged on purpose, with the checksums fixed up so that pre-flight has to
// find the damage itself rather than stop at a wrong checksum.
// ---------------------------------------------------------------------------------------------------

/** Overwrites `bytes` at `offset` in a file. */
export async function patchFile(file: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

/** A VHD checksum: one's complement of the byte sum, the 4 checksum bytes at `at` counted as zero. */
function vhdChecksumOf(block: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < block.length; i++) if (i < at || i >= at + 4) sum += block[i]!;
  return ~sum >>> 0;
}

/** Edits every "conectix" footer of a VHD (at EOF and, for dynamic disks, its copy at 0) and fixes the checksums. */
export async function rewriteVhdFooters(file: string, edit: (footer: Buffer) => void): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    for (const offset of [0, size - 512]) {
      const footer = Buffer.alloc(512);
      await handle.read(footer, 0, 512, offset);
      if (footer.toString('latin1', 0, 8) !== 'conectix') continue;
      edit(footer);
      footer.writeUInt32BE(vhdChecksumOf(footer, 64), 64);
      await handle.write(footer, 0, 512, offset);
    }
  } finally {
    await handle.close();
  }
}

/** Edits the 1024-byte "cxsparse" header of a dynamic VHD (at the footer's dataOffset) and fixes its checksum. */
export async function rewriteVhdDynamicHeader(file: string, edit: (header: Buffer) => void): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const footer = Buffer.alloc(512);
    await handle.read(footer, 0, 512, 0);
    const at = Number(footer.readBigUInt64BE(16));
    const header = Buffer.alloc(1024);
    await handle.read(header, 0, 1024, at);
    if (header.toString('latin1', 0, 8) !== 'cxsparse') throw new Error(`${file} has no dynamic VHD header`);
    edit(header);
    header.writeUInt32BE(vhdChecksumOf(header, 36), 36);
    await handle.write(header, 0, 1024, at);
  } finally {
    await handle.close();
  }
}

/**
 * A row for an image made by makeImage: random bytes hold no guest, so the look inside the guest (which
 * would refuse them: "no partition table") is skipped for the row, as an operator skips a disk the reader
 * cannot judge; pre-flight records "skipped by operator". Tests of the inspection itself use real guests
 * (guest-images.ts, test/unit/validate-guests.test.ts, test/integration/guest-preflight.test.ts).
 */
export const RANDOM_IMAGE_ROW = { inspection: 'skip' } as const;
