/**
 * The boot disk's partition table, as VM Import needs it: an MBR (GPT/UEFI is not for ImportInstance),
 * with partitions, one of them marked active (bootable). The table is read by balena's partitioninfo
 * (primary, extended and logical MBR partitions; GPT behind its protective entry); the active flags, which
 * it does not report, from the four primary entries of sector 0 (status byte 0x80).
 */
import { getPartitions } from 'partitioninfo';
import type { GuestDisk } from './disk-reader';
import type { GuestFileDisk } from './file-disk';
import type { FileSystemInfo } from './filesystems';
import { identifyFileSystem } from './filesystems';

export interface Partition {
  /** 1-4 primary, 5+ logical (as Linux numbers them). */
  index: number;
  offset: number;
  size: number;
  /** MBR partition type byte (0x83 Linux, 0x07 NTFS, 0x8e LVM, ...). */
  type: number;
  active: boolean;
}

export type PartitionTable =
  | { kind: 'mbr'; partitions: Partition[] }
  | { kind: 'gpt' }
  /** No partition table; `wholeDisk` is the file system written over the whole disk, if any. */
  | { kind: 'none'; wholeDisk?: FileSystemInfo; why: string };

const EXTENDED = new Set([0x05, 0x0f, 0x85]);

export async function readPartitionTable(disk: GuestDisk, fileDisk: GuestFileDisk): Promise<PartitionTable> {
  const mbr = await disk.read(0, 512);
  const wholeDisk = await identifyFileSystem(disk, 0);
  if (wholeDisk)
    return {
      kind: 'none',
      wholeDisk,
      why: `the disk starts with a ${wholeDisk.type} file system, not a partition table`,
    };
  if (mbr.readUInt16LE(510) !== 0xaa55) return { kind: 'none', why: 'sector 0 has no MBR signature (0x55AA)' };
  let table;
  try {
    table = await getPartitions(fileDisk, { includeExtended: false });
  } catch (err) {
    return {
      kind: 'none',
      why: `the partition table cannot be read (${err instanceof Error ? err.message : String(err)})`,
    };
  }
  if (table.type === 'gpt') return { kind: 'gpt' };
  const partitions = table.partitions
    .filter((p) => p.size > 0 && !EXTENDED.has(p.type) && p.offset + p.size <= disk.virtualBytes)
    .map((p) => ({
      index: p.index,
      offset: p.offset,
      size: p.size,
      type: p.type,
      active: p.index <= 4 && mbr.readUInt8(446 + 16 * (p.index - 1)) === 0x80,
    }));
  return { kind: 'mbr', partitions };
}
