/**
 * Which file system a partition holds, by the magic numbers its own tools write: the ones VM Import
 * lists (ext2/3/4, NTFS, XFS, Btrfs, JFS), LVM physical volumes, and what it does not boot from.
 */
import type { FileHandle } from 'node:fs/promises';

export type FileSystem = 'ext' | 'ntfs' | 'xfs' | 'btrfs' | 'jfs' | 'lvm2' | 'swap' | 'fat';

async function bytesAt(disk: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await disk.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

export async function detectFileSystem(disk: FileHandle, offset: number): Promise<FileSystem | undefined> {
  const head = await bytesAt(disk, offset, 4096);
  if (head.length < 4096) return undefined;
  if (head.readUInt16LE(1024 + 56) === 0xef53) return 'ext'; // superblock at 1024, s_magic at 56
  if (head.toString('latin1', 3, 11) === 'NTFS    ') return 'ntfs';
  if (head.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  if (head.toString('latin1', 512, 520) === 'LABELONE' && head.toString('latin1', 536, 544) === 'LVM2 001')
    return 'lvm2';
  if (head.toString('latin1', 4086, 4096) === 'SWAPSPACE2') return 'swap';
  if (head.toString('latin1', 54, 57) === 'FAT' || head.toString('latin1', 82, 85) === 'FAT') return 'fat';
  if ((await bytesAt(disk, offset + 0x10040, 8)).toString('latin1') === '_BHRfS_M') return 'btrfs';
  if ((await bytesAt(disk, offset + 0x8000, 4)).toString('latin1') === 'JFS1') return 'jfs';
  return undefined;
}

/** File systems VM Import boots Linux from that the simulator recognises but does not read (no Debian tool reads them unmounted). */
export const UNREAD_LINUX_FILE_SYSTEMS: ReadonlySet<FileSystem> = new Set(['xfs', 'btrfs', 'jfs', 'lvm2']);
