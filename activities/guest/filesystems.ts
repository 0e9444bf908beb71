/**
 * Which file system a partition holds, from its superblock's magic, and the free space the superblock
 * records (ext2/3/4, XFS, Btrfs; NTFS counts its $Bitmap in ntfs.ts). Layouts: the kernel's
 * Documentation/filesystems/ext4 (superblock), XFS's xfs_format.h (xfs_dsb), Btrfs's on-disk format page,
 * and the NTFS boot sector (ntfs.ts).
 */
import type { GuestDisk } from './disk-reader';
import { isNtfsBoot } from './ntfs';

export type FileSystemType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs' | 'jfs' | 'ntfs' | 'vfat' | 'swap' | 'lvm2';

export interface FileSystemInfo {
  type: FileSystemType;
  /** Free bytes as the superblock records them; undefined where the superblock does not say. */
  freeBytes?: number;
  sizeBytes?: number;
}

const EXT_MAGIC = 0xef53;
const EXT_COMPAT_JOURNAL = 0x4;
const EXT_INCOMPAT_EXT4 = 0x40 | 0x80 | 0x200; // extents, 64bit, flex_bg: what makes ext4
const EXT_INCOMPAT_64BIT = 0x80;

function ext(sb: Buffer): FileSystemInfo {
  const blockBytes = 1024 << sb.readUInt32LE(0x18);
  const incompat = sb.readUInt32LE(0x60);
  const wide = (incompat & EXT_INCOMPAT_64BIT) !== 0;
  const count = (lo: number, hi: number): number => sb.readUInt32LE(lo) + (wide ? sb.readUInt32LE(hi) * 2 ** 32 : 0);
  const type = incompat & EXT_INCOMPAT_EXT4 ? 'ext4' : sb.readUInt32LE(0x5c) & EXT_COMPAT_JOURNAL ? 'ext3' : 'ext2';
  // Free blocks include those reserved for root: VM Import writes its drivers as root.
  return { type, freeBytes: count(0x0c, 0x158) * blockBytes, sizeBytes: count(0x04, 0x150) * blockBytes };
}

function xfs(sb: Buffer): FileSystemInfo {
  const blockBytes = sb.readUInt32BE(4);
  return {
    type: 'xfs',
    sizeBytes: Number(sb.readBigUInt64BE(8)) * blockBytes,
    freeBytes: Number(sb.readBigUInt64BE(144)) * blockBytes,
  };
}

/** Identifies the file system at `offset`; undefined when none is recognised. */
export async function identifyFileSystem(disk: GuestDisk, offset: number): Promise<FileSystemInfo | undefined> {
  const head = await disk.read(offset, 4096);
  if (isNtfsBoot(head)) return { type: 'ntfs' };
  if (head.toString('latin1', 0, 4) === 'XFSB') return xfs(head);
  const ext2 = head.subarray(1024, 2048);
  if (ext2.readUInt16LE(0x38) === EXT_MAGIC) return ext(ext2);
  if (head.toString('latin1', 512 + 0x18, 512 + 0x20) === 'LVM2 001') return { type: 'lvm2' };
  if (head.toString('latin1', 4086, 4096) === 'SWAPSPACE2') return { type: 'swap' };
  if (head.toString('latin1', 0x52, 0x57) === 'FAT32' || head.toString('latin1', 0x36, 0x39) === 'FAT')
    return { type: 'vfat' };
  const far = await disk.read(offset + 0x10000, 4096);
  if (far.toString('latin1', 0x40, 0x48) === '_BHRfS_M') {
    const total = Number(far.readBigUInt64LE(0x70));
    return { type: 'btrfs', sizeBytes: total, freeBytes: total - Number(far.readBigUInt64LE(0x78)) };
  }
  const jfs = await disk.read(offset + 0x8000, 4);
  if (jfs.toString('latin1') === 'JFS1') return { type: 'jfs' };
  return undefined;
}

export const LINUX_FILE_SYSTEMS: readonly FileSystemType[] = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'jfs'];
