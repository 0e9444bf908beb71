/**
 * The VHD ("conectix") footer and dynamic-disk header, big-endian. Layout: Microsoft "Virtual Hard Disk
 * Image Format Specification" / qemu block/vpc.c.
 */

export const VHD_COOKIE = 'conectix';
export const VHD_DYNAMIC_COOKIE = 'cxsparse';
export const FOOTER_SIZE = 512;
/** The largest disk a VHD can describe: 2040 GiB (qemu block/vpc.c, VHD_MAX_SECTORS = 0xff000000). */
export const VHD_MAX_BYTES = 0xff000000 * 512;

export const VHD_DISK_TYPES: Record<number, string> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };

export interface VhdFooter {
  dataOffset: bigint;
  creatorApp: string;
  originalSize: bigint;
  /** Virtual size in bytes. */
  currentSize: bigint;
  /** 2 fixed, 3 dynamic, 4 differencing. */
  diskType: number;
  checksum: number;
  /** True when the stored checksum matches the footer's bytes. */
  checksumValid: boolean;
}

export function isVhdFooter(block: Buffer): boolean {
  return block.length >= 8 && block.toString('latin1', 0, 8) === VHD_COOKIE;
}

/** One's complement of the byte sum, skipping the 4 checksum bytes at `checksumOffset`. */
export function vhdChecksum(block: Buffer, checksumOffset: number): number {
  let sum = 0;
  for (let i = 0; i < block.length; i++) {
    if (i >= checksumOffset && i < checksumOffset + 4) continue;
    sum += block[i] ?? 0;
  }
  return ~sum >>> 0;
}

export function parseVhdFooter(block: Buffer): VhdFooter {
  if (!isVhdFooter(block) || block.length < FOOTER_SIZE) throw new Error('not a VHD footer');
  const footer = block.subarray(0, FOOTER_SIZE);
  const checksum = footer.readUInt32BE(64);
  return {
    dataOffset: footer.readBigUInt64BE(16),
    creatorApp: footer.toString('latin1', 28, 32),
    originalSize: footer.readBigUInt64BE(40),
    currentSize: footer.readBigUInt64BE(48),
    diskType: footer.readUInt32BE(60),
    checksum,
    checksumValid: vhdChecksum(footer, 64) === checksum,
  };
}

export interface VhdDynamicHeader {
  tableOffset: bigint;
  maxTableEntries: number;
  blockSize: number;
  checksumValid: boolean;
}

/** The 1024-byte dynamic disk header at the footer's dataOffset. */
export function parseVhdDynamicHeader(block: Buffer): VhdDynamicHeader {
  if (block.length < 1024 || block.toString('latin1', 0, 8) !== VHD_DYNAMIC_COOKIE)
    throw new Error('not a VHD dynamic disk header');
  const header = block.subarray(0, 1024);
  return {
    tableOffset: header.readBigUInt64BE(16),
    maxTableEntries: header.readUInt32BE(28),
    blockSize: header.readUInt32BE(32),
    checksumValid: vhdChecksum(header, 36) === header.readUInt32BE(36),
  };
}

/** Bytes of the sector bitmap in front of each data block (one bit per sector, padded to a sector). */
export function vhdBitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / 512 / 8 / 512) * 512;
}
