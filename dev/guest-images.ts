/**
 * Guest disks that look real to anyone who reads them: an MBR made by sfdisk, a file system made by
 * mke2fs from a directory tree (etc/os-release, etc/fstab, boot/vmlinuz-<release>, lib/modules, boot/grub)
 * or by mkntfs (Windows\System32 and a SOFTWARE hive written by hivexregedit), then qemu-img into the
 * container a caller asks for (the tests, and the demo's example disks). Each distinct guest is built once per
 * process and copied from the cache. Windows guests need the ntfs-3g FUSE mount (to create directories); `windowsGuestsSupported()` says
 * whether this machine allows it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
/** Where the first (only) partition starts: 1 MiB, as fdisk and every installer align it. */
const PARTITION_OFFSET = MiB;

export interface LinuxGuest {
  kind: 'linux';
  /** /etc/os-release contents (omit for distributions that predate it). */
  osRelease?: string;
  /** /etc/redhat-release contents. */
  redhatRelease?: string;
  /** Kernel release: boot/vmlinuz-<release> and lib/modules/<release>; omit for none. */
  kernel?: string;
  /** More kernels, GRUB's default first (e.g. a mainline kernel beside the distribution's). */
  extraKernels?: string[];
  /** @default true */
  fstab?: boolean;
  /** @default ext4 */
  fsType?: 'ext2' | 'ext3' | 'ext4';
  /** No partition table: the file system starts at byte 0 of the disk. */
  unpartitioned?: boolean;
}

export interface WindowsGuest {
  kind: 'windows';
  /** SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProductName; omit for a System32 without a hive. */
  productName?: string;
  /** CSDVersion, e.g. "Service Pack 2". */
  servicePack?: string;
  /** The partition's active (bootable) flag. @default true */
  active?: boolean;
}

/** A partitioned disk whose ext4 file system holds no operating system. */
export interface EmptyGuest {
  kind: 'empty';
}

export type GuestSpec = LinuxGuest | WindowsGuest | EmptyGuest;

/** Guests the tests share, named for what the simulator should make of them. */
export const GUESTS = {
  ubuntu2204: {
    kind: 'linux',
    osRelease:
      'NAME="Ubuntu"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nVERSION_ID="22.04"\n',
    kernel: '5.15.0-91-generic',
  },
  /** CentOS 4.9: kernel 2.6.9, older than anything on VM Import's list. */
  centos4: { kind: 'linux', redhatRelease: 'CentOS release 4.9 (Final)\n', kernel: '2.6.9-103.EL', fsType: 'ext3' },
  /** CentOS 5.11: kernel 2.6.18, which the list names for CentOS 5.1-5.11. */
  centos511: {
    kind: 'linux',
    redhatRelease: 'CentOS release 5.11 (Final)\n',
    kernel: '2.6.18-398.el5',
    fsType: 'ext3',
  },
  /** Ubuntu's file system written over the whole disk, no partition table. */
  unpartitioned: {
    kind: 'linux',
    osRelease: 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n',
    kernel: '5.15.0-91-generic',
    unpartitioned: true,
  },
  empty: { kind: 'empty' },
  windows2019: { kind: 'windows', productName: 'Windows Server 2019 Datacenter' },
  /** Windows XP: not on VM Import's list. */
  windowsXp: { kind: 'windows', productName: 'Microsoft Windows XP', servicePack: 'Service Pack 3' },
} satisfies Record<string, GuestSpec>;

export type GuestContainer = 'raw' | 'stream-vmdk' | 'fixed-vhd' | 'dynamic-vhd';

export interface GuestImageOptions {
  /** Disk size in MiB. @default 64 */
  sizeMiB?: number;
  /** Text written at byte 512 (the gap before the partition), e.g. the simulator's explicit failure marker. */
  marker?: string;
  /** Random data in a file of the guest (so uploads and compressed containers have bytes to move). @default 1 */
  payloadMiB?: number;
}

async function run(tool: string, args: string[], input?: string): Promise<void> {
  const child = execFileAsync(tool, args);
  if (input !== undefined) child.child.stdin?.end(input);
  await child;
}

let cacheDir: string | undefined;
const cache = new Map<string, Promise<string>>();

async function cacheRoot(): Promise<string> {
  if (!cacheDir) {
    cacheDir = await mkdtemp(path.join(tmpdir(), 'vmconvoy-guest-images-'));
    const dir = cacheDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return cacheDir;
}

/** Makes `<dir>/<name>` holding `guest` in `container` and returns its path. */
export async function makeGuestImage(
  dir: string,
  name: string,
  guest: GuestSpec,
  container: GuestContainer = 'raw',
  opts: GuestImageOptions = {}
): Promise<string> {
  const payloadMiB = opts.payloadMiB ?? 1;
  const key = JSON.stringify({ guest, size: opts.sizeMiB ?? 64, payloadMiB });
  let raw = cache.get(key);
  if (!raw) {
    raw = buildRaw(guest, opts.sizeMiB ?? 64, payloadMiB);
    cache.set(key, raw);
  }
  const file = path.join(dir, name);
  const source = opts.marker ? path.join(dir, `${name}.marked.raw`) : await raw;
  if (opts.marker) {
    await copyFile(await raw, source);
    const handle = await open(source, 'r+');
    await handle.write(Buffer.from(`${opts.marker}\n`), 0, undefined, 512);
    await handle.close();
  }
  if (container === 'raw') await copyFile(source, file);
  else
    await run(process.env.QEMU_IMG ?? 'qemu-img', [
      'convert',
      '-q',
      '-f',
      'raw',
      ...containerArgs(container),
      source,
      file,
    ]);
  if (opts.marker) await rm(source, { force: true });
  return file;
}

function containerArgs(container: Exclude<GuestContainer, 'raw'>): string[] {
  if (container === 'stream-vmdk') return ['-O', 'vmdk', '-o', 'subformat=streamOptimized'];
  if (container === 'fixed-vhd') return ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'];
  return ['-O', 'vpc', '-o', 'force_size=on'];
}

async function buildRaw(guest: GuestSpec, sizeMiB: number, payloadMiB = 1): Promise<string> {
  const root = await cacheRoot();
  const work = await mkdtemp(path.join(root, 'build-'));
  const disk = path.join(work, 'disk.raw');
  const handle = await open(disk, 'w');
  await handle.truncate(sizeMiB * MiB);
  await handle.close();
  const payload = randomBytes(payloadMiB * MiB);
  if (guest.kind === 'windows') await buildWindows(guest, disk, work, sizeMiB, payload);
  else {
    const linux: LinuxGuest = guest.kind === 'linux' ? guest : { kind: 'linux', fstab: false };
    await buildLinux(linux, guest.kind === 'empty', disk, work, sizeMiB, payload);
  }
  return disk;
}

async function buildLinux(
  guest: LinuxGuest,
  empty: boolean,
  disk: string,
  work: string,
  sizeMiB: number,
  payload: Buffer
): Promise<void> {
  const tree = path.join(work, 'tree');
  await mkdir(path.join(tree, 'etc'), { recursive: true });
  await mkdir(path.join(tree, 'boot', 'grub'), { recursive: true });
  await mkdir(path.join(tree, 'var', 'lib'), { recursive: true });
  // Some data of its own, so the disk is not all metadata.
  await writeFile(path.join(tree, 'var', 'lib', 'payload.bin'), payload);
  if (!empty) {
    if (guest.osRelease) await writeFile(path.join(tree, 'etc', 'os-release'), guest.osRelease);
    if (guest.redhatRelease) await writeFile(path.join(tree, 'etc', 'redhat-release'), guest.redhatRelease);
    if (guest.fstab !== false) await writeFile(path.join(tree, 'etc', 'fstab'), 'LABEL=root / ext4 defaults 0 1\n');
    if (guest.kernel) {
      const kernels = [...(guest.extraKernels ?? []), guest.kernel];
      for (const k of kernels) {
        await writeFile(path.join(tree, 'boot', `vmlinuz-${k}`), randomBytes(64 * 1024));
        await mkdir(path.join(tree, 'lib', 'modules', k), { recursive: true });
      }
      const entries = kernels.map((k) => `menuentry 'Linux' {\n  linux /boot/vmlinuz-${k} root=LABEL=root\n}\n`);
      await writeFile(path.join(tree, 'boot', 'grub', 'grub.cfg'), entries.join(''));
    }
  }
  const fsType = guest.fsType ?? 'ext4';
  if (guest.unpartitioned) {
    await run('mke2fs', ['-q', '-F', '-t', fsType, '-L', 'root', '-d', tree, disk]);
    return;
  }
  await run('sfdisk', ['-q', disk], 'label: dos\nstart=2048, type=83, bootable\n');
  // mke2fs writes straight into the partition through its offset option: no loop device.
  await run('mke2fs', [
    '-q',
    '-F',
    '-t',
    fsType,
    '-L',
    'root',
    '-E',
    `offset=${PARTITION_OFFSET}`,
    '-d',
    tree,
    disk,
    `${sizeMiB - 1}M`,
  ]);
}

/** Whether this machine can build Windows guests (mkntfs, and an ntfs-3g FUSE mount to create directories). */
export async function windowsGuestsSupported(): Promise<boolean> {
  try {
    await buildRaw(GUESTS.windows2019, 16);
    return true;
  } catch {
    return false;
  }
}

async function buildWindows(
  guest: WindowsGuest,
  disk: string,
  work: string,
  sizeMiB: number,
  payload: Buffer
): Promise<void> {
  const volume = path.join(work, 'ntfs.img');
  const volumeHandle = await open(volume, 'w');
  await volumeHandle.truncate((sizeMiB - 1) * MiB);
  await volumeHandle.close();
  await run('mkntfs', ['-q', '-F', '-Q', '-L', 'Windows', '-p', '2048', '-H', '255', '-S', '63', volume]);
  const mnt = path.join(work, 'mnt');
  await mkdir(mnt);
  await run('ntfs-3g', [volume, mnt]);
  try {
    const config = path.join(mnt, 'Windows', 'System32', 'config');
    await mkdir(config, { recursive: true });
    await writeFile(path.join(mnt, 'Windows', 'System32', 'ntoskrnl.exe'), payload);
    if (guest.productName) {
      const hive = path.join(work, 'SOFTWARE');
      await writeFile(hive, emptyHive());
      const values = [
        `"ProductName"="${guest.productName}"`,
        ...(guest.servicePack ? [`"CSDVersion"="${guest.servicePack}"`] : []),
      ];
      const reg = [
        'Windows Registry Editor Version 5.00',
        '',
        '[\\Microsoft]',
        '',
        '[\\Microsoft\\Windows NT]',
        '',
        '[\\Microsoft\\Windows NT\\CurrentVersion]',
        ...values,
        '',
      ];
      await writeFile(path.join(work, 'software.reg'), reg.join('\r\n'));
      await run('hivexregedit', ['--merge', hive, path.join(work, 'software.reg')]);
      await copyFile(hive, path.join(config, 'SOFTWARE'));
    }
  } finally {
    await run('umount', [mnt]);
  }
  const type = guest.active === false ? 'type=7' : 'type=7, bootable';
  await run('sfdisk', ['-q', disk], `label: dos\nstart=2048, ${type}\n`);
  // qemu-img writes the volume into the disk at the partition's offset and skips its holes by asking the
  // file system where the data is (SEEK_DATA), where copyInto reads every byte: a 6 GiB volume takes ~0.5 s
  // instead of the minute a byte-by-byte copy took.
  await run(process.env.QEMU_IMG ?? 'qemu-img', [
    'convert',
    '-n',
    '-f',
    'raw',
    volume,
    '--target-image-opts',
    `driver=raw,offset=${PARTITION_OFFSET},size=${(sizeMiB - 1) * MiB},file.driver=file,file.filename=${disk.replaceAll(',', ',,')}`,
  ]);
}

/**
 * An empty registry hive (what hivexregedit needs to merge into; hivex cannot create one): the "regf"
 * base block, one 4 KiB "hbin" holding the root key ("nk"), its security descriptor ("sk") and a free
 * cell. Layout from the published REGF format notes; only the fields hivex checks are filled in.
 */
export function emptyHive(): Buffer {
  const bin = Buffer.alloc(4096);
  bin.write('hbin', 0, 'latin1');
  bin.writeUInt32LE(4096, 8); // this bin's size
  const name = Buffer.from('ROOT', 'latin1');
  const nkAt = 0x20;
  const nkSize = Math.ceil((4 + 0x4c + name.length) / 8) * 8;
  const skAt = nkAt + nkSize;
  const sd = Buffer.from([1, 0, 0x04, 0x80, ...Buffer.alloc(16)]); // self-relative descriptor, no owner/group/ACLs
  const skSize = Math.ceil((4 + 0x14 + sd.length) / 8) * 8;
  // Root key: allocated cell (negative size), "nk", flags HIVE_ENTRY|NO_DELETE|COMP_NAME, no subkeys, values or class.
  bin.writeInt32LE(-nkSize, nkAt);
  const nk = nkAt + 4;
  bin.write('nk', nk, 'latin1');
  bin.writeUInt16LE(0x2c, nk + 2);
  for (const field of [0x1c, 0x20, 0x28, 0x30]) bin.writeUInt32LE(0xffffffff, nk + field);
  bin.writeUInt32LE(skAt, nk + 0x2c);
  bin.writeUInt16LE(name.length, nk + 0x48);
  name.copy(bin, nk + 0x4c);
  // Security cell: a ring of one (flink = blink = itself), used once.
  bin.writeInt32LE(-skSize, skAt);
  const sk = skAt + 4;
  bin.write('sk', sk, 'latin1');
  bin.writeUInt32LE(skAt, sk + 4);
  bin.writeUInt32LE(skAt, sk + 8);
  bin.writeUInt32LE(1, sk + 12);
  bin.writeUInt32LE(sd.length, sk + 16);
  sd.copy(bin, sk + 20);
  bin.writeInt32LE(4096 - (skAt + skSize), skAt + skSize); // the rest: one free cell
  const base = Buffer.alloc(4096);
  base.write('regf', 0, 'latin1');
  base.writeUInt32LE(1, 4); // sequence numbers equal: the hive is consistent
  base.writeUInt32LE(1, 8);
  base.writeUInt32LE(1, 0x14); // version 1.3
  base.writeUInt32LE(3, 0x18);
  base.writeUInt32LE(1, 0x20);
  base.writeUInt32LE(nkAt, 0x24); // root cell, relative to the first bin
  base.writeUInt32LE(4096, 0x28); // bins' total size
  base.writeUInt32LE(1, 0x2c);
  let checksum = 0;
  for (let i = 0; i < 0x1fc; i += 4) checksum ^= base.readUInt32LE(i);
  base.writeUInt32LE(checksum >>> 0, 0x1fc);
  return Buffer.concat([base, bin]);
}
