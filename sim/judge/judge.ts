/**
 * Judging the boot disk by its content, as VM Import does before it converts an instance: a partition
 * table, a partition with a file system it knows, an operating system on it, and (Linux) a kernel the
 * VM Import guide lists. Independent of vmconvoy's own pre-flight: Debian's tools read the disk here
 * (qemu-img, debugfs, ntfs-3g, hivex). Messages and their sources: sim/README.md, "Content judging".
 */
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { failureMarker } from '../conversion/image-checks';
import type { ManifestPart } from '../conversion/manifest';
import type { FileSystem } from './filesystems';
import { UNREAD_LINUX_FILE_SYSTEMS, detectFileSystem } from './filesystems';
import type { LinuxFiles } from './linux-guest';
import { distributionOf, readLinuxFiles } from './linux-guest';
import type { Partition } from './partitions';
import { readPartitionTable } from './partitions';
import { downloadImage, rawDisk } from './raw-disk';
import { kernelSupported, windowsSupported } from './supported-os';
import { ToolMissingError } from './tools';
import { extractPartition, readWindowsFiles } from './windows-guest';

export const MESSAGES = {
  noPartitions: 'ClientError: No valid partitions. Not a valid volume.',
  noBootable: 'Client.Unsupported: No bootable partition found.',
  unknownOs: 'ClientError: Unknown OS / Missing OS files',
  multipleEtc: 'ClientError: Unsupported configuration - Multiple directories found',
  noFstab: 'ClientError: Invalid configuration - Could not read fstab',
  noKernel: 'ClientError: Unable to determine kernel version.',
  kernel: (release: string) => `ClientError: Unsupported kernel version ${release}`,
  windows: 'ClientError: Unsupported Windows OS',
  corruptVmdk: 'ClientError: Uncompressed data has an invalid length',
  corruptVhd: 'ClientError: Disk validation failed [Invalid VHD data]',
};

/** Where in the conversion a judged failure shows: disk-level problems early, OS-level ones halfway (the simulator's guess). */
const DISK_STAGE = 0.1;
const OS_STAGE = 0.5;

export interface Judgement {
  failure?: { at: number; message: string };
  /** The OS found; undefined when the judge could not look. */
  platform?: 'windows' | 'linux';
  /** What was found, for `/_sim/state` (e.g. "ubuntu 22.04, kernel 5.15.0-91-generic on partition 1 (ext)"). */
  judged: string;
  /** The explicit failure marker found in the raw disk's first MiB (inside a VMDK or VHD it is compressed or offset). */
  marker?: string;
}

const fail = (at: number, message: string, judged: string): Judgement => ({ failure: { at, message }, judged });

interface Volume {
  partition: Partition;
  fs: FileSystem | undefined;
}

/** Downloads the image its parts make up and judges it. Throws (the task keeps waiting) when a part cannot be read. */
export async function judgeUpload(format: string, parts: ManifestPart[]): Promise<Judgement> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'vmconvoy-sim-judge-'));
  try {
    const image = path.join(scratch, 'image');
    await downloadImage(parts, image);
    try {
      const raw = await rawDisk(format, image, path.join(scratch, 'disk.raw'));
      if ('error' in raw)
        return fail(
          DISK_STAGE,
          format === 'VMDK' ? MESSAGES.corruptVmdk : MESSAGES.corruptVhd,
          `unreadable ${format}: ${raw.error}`
        );
      return { ...(await judgeDisk(raw.file, scratch)), marker: failureMarker(await firstMiB(raw.file)) };
    } catch (err) {
      if (err instanceof ToolMissingError) return { judged: `not judged: ${err.message}` };
      throw err;
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function firstMiB(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Judges a raw disk; `scratch` is a directory for temporary copies. */
export async function judgeDisk(rawFile: string, scratch: string): Promise<Judgement> {
  const size = (await stat(rawFile)).size;
  const disk = await open(rawFile, 'r');
  let volumes: Volume[];
  try {
    const table = await readPartitionTable(disk, size);
    if (table.kind === 'none') return fail(DISK_STAGE, MESSAGES.noPartitions, table.why);
    // ImportInstance boots MBR disks only; a GPT root reads as having no bootable partition (troubleshooting page).
    if (table.kind === 'gpt') return fail(DISK_STAGE, MESSAGES.noBootable, 'GPT partition table');
    volumes = [];
    for (const partition of table.partitions)
      volumes.push({ partition, fs: await detectFileSystem(disk, partition.offset) });
  } finally {
    await disk.close();
  }
  const known = volumes.filter(
    (v) => v.fs === 'ext' || v.fs === 'ntfs' || (v.fs && UNREAD_LINUX_FILE_SYSTEMS.has(v.fs))
  );
  const described = volumes
    .map((v) => `${v.partition.number}:${v.fs ?? `type ${v.partition.type.toString(16)}`}`)
    .join(', ');
  if (known.length === 0)
    return fail(DISK_STAGE, MESSAGES.noPartitions, `no file system VM Import knows (${described})`);
  // The active partition first: that is where a BIOS looks.
  known.sort((a, b) => Number(b.partition.bootable) - Number(a.partition.bootable));

  const windows = await judgeWindows(rawFile, known, scratch);
  if (windows) return windows;
  const linux = await judgeLinux(rawFile, known);
  if (linux) return linux;
  const unread = known.find((v) => v.fs && UNREAD_LINUX_FILE_SYSTEMS.has(v.fs));
  if (unread)
    return {
      platform: 'linux',
      judged: `partition ${unread.partition.number} is ${unread.fs}: recognised, contents not read by the simulator`,
    };
  return fail(OS_STAGE, MESSAGES.unknownOs, `no operating system files on ${described}`);
}

async function judgeWindows(rawFile: string, volumes: Volume[], scratch: string): Promise<Judgement | undefined> {
  for (const v of volumes.filter((x) => x.fs === 'ntfs')) {
    const volume = path.join(scratch, `partition-${v.partition.number}.ntfs`);
    await extractPartition(rawFile, v.partition.offset, v.partition.length, volume);
    const files = await readWindowsFiles(volume, scratch);
    await rm(volume, { force: true });
    if (!files.system32) continue;
    const where = `partition ${v.partition.number} (ntfs)`;
    // The Windows boot code in the MBR starts the active partition; without one nothing boots.
    if (!v.partition.bootable) return fail(DISK_STAGE, MESSAGES.noBootable, `Windows on ${where}, no active partition`);
    if (!files.product)
      return fail(OS_STAGE, MESSAGES.unknownOs, `Windows\\System32 on ${where} but no readable SOFTWARE hive`);
    const name = [files.product.productName, files.product.servicePack].filter(Boolean).join(' ');
    if (!windowsSupported(files.product)) return fail(OS_STAGE, MESSAGES.windows, `${name} on ${where}`);
    return { platform: 'windows', judged: `${name} on ${where}` };
  }
  return undefined;
}

async function judgeLinux(rawFile: string, volumes: Volume[]): Promise<Judgement | undefined> {
  const read: Array<{ v: Volume; files: LinuxFiles }> = [];
  for (const v of volumes.filter((x) => x.fs === 'ext'))
    read.push({ v, files: await readLinuxFiles(rawFile, v.partition.offset) });
  const roots = read.filter((r) => distributionOf(r.files));
  if (roots.length === 0) return undefined;
  const root = roots[0]!;
  const distro = distributionOf(root.files)!;
  const where = `partition ${root.v.partition.number} (ext)`;
  if (roots.length > 1)
    return fail(
      OS_STAGE,
      MESSAGES.multipleEtc,
      `operating systems on partitions ${roots.map((r) => r.v.partition.number).join(', ')}`
    );
  if (!root.files.hasFstab) return fail(OS_STAGE, MESSAGES.noFstab, `${distro.name} on ${where} without /etc/fstab`);
  // The kernels in the root's /boot, or at the top of a separate /boot partition.
  const kernels = [...root.files.kernels, ...read.filter((r) => r !== root).flatMap((r) => r.files.kernels)];
  if (kernels.length === 0) return fail(OS_STAGE, MESSAGES.noKernel, `${distro.name} on ${where}, no /boot/vmlinuz-*`);
  const newest = [...kernels].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1)!;
  const judged = `${distro.name} (${distro.id}), kernel ${newest} on ${where}`;
  if (!kernelSupported(distro.id, newest)) return fail(OS_STAGE, MESSAGES.kernel(newest), judged);
  return { platform: 'linux', judged };
}
