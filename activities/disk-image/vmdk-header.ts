/**
 * The VMDK sparse extent header (little-endian, sector 0) and the stream-optimized checks pre-flight needs.
 * Layout: VMware "Virtual Disk Format 5.0" / qemu block/vmdk.c.
 */

export const VMDK_MAGIC = 'KDMV';
export const SECTOR = 512;

const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;
/** gdOffset meaning "the grain directory is at the end; read the footer copy of the header". */
export const GD_AT_END = 0xffffffffffffffffn;

export interface VmdkHeader {
  version: number;
  flags: number;
  /** Virtual size in sectors. */
  capacity: bigint;
  grainSize: bigint;
  descriptorOffset: bigint;
  descriptorSize: bigint;
  numGTEsPerGT: number;
  gdOffset: bigint;
  overHead: bigint;
  uncleanShutdown: boolean;
  compressAlgorithm: number;
}

/** Bytes of the header that parseVmdkHeader reads (through compressAlgorithm). */
export const VMDK_HEADER_BYTES = 79;
/** qemu's bounds (block/vmdk.c): a grain of at most 1 GiB ("Invalid granularity"), at most 512 entries per grain table. */
const MAX_GRAIN_SECTORS = 0x200000n;
const MAX_GTES_PER_GT = 512;

export function isVmdkHeader(sector: Buffer): boolean {
  return sector.length >= 4 && sector.toString('latin1', 0, 4) === VMDK_MAGIC;
}

export function parseVmdkHeader(sector: Buffer): VmdkHeader {
  if (!isVmdkHeader(sector) || sector.length < 79) throw new Error('not a VMDK sparse extent header');
  return {
    version: sector.readUInt32LE(4),
    flags: sector.readUInt32LE(8),
    capacity: sector.readBigUInt64LE(12),
    grainSize: sector.readBigUInt64LE(20),
    descriptorOffset: sector.readBigUInt64LE(28),
    descriptorSize: sector.readBigUInt64LE(36),
    numGTEsPerGT: sector.readUInt32LE(44),
    gdOffset: sector.readBigUInt64LE(56),
    overHead: sector.readBigUInt64LE(64),
    uncleanShutdown: sector.readUInt8(72) !== 0,
    compressAlgorithm: sector.readUInt16LE(77),
  };
}

/**
 * What makes a header impossible, as "found (expected)", or undefined. These are the bounds qemu enforces
 * and the VMDK spec states (grains are a power of two); any VMDK that a VMware product or qemu-img writes
 * passes them, and they bound what pre-flight reads at the header's offsets.
 */
export function vmdkHeaderProblem(h: VmdkHeader, fileBytes: number): string | undefined {
  if (h.version < 1 || h.version > 3) return `version ${h.version} (a VMDK header has version 1, 2 or 3)`;
  if (h.grainSize < 1n || h.grainSize > MAX_GRAIN_SECTORS || (h.grainSize & (h.grainSize - 1n)) !== 0n)
    return `grain size ${h.grainSize} sectors (a power of two up to ${MAX_GRAIN_SECTORS})`;
  if (h.numGTEsPerGT > MAX_GTES_PER_GT) return `${h.numGTEsPerGT} entries per grain table (at most ${MAX_GTES_PER_GT})`;
  if (h.descriptorOffset > 0n && h.descriptorOffset * BigInt(SECTOR) >= BigInt(fileBytes))
    return `its embedded descriptor lies past the end of the file (at sector ${h.descriptorOffset})`;
  return undefined;
}

/** Stream-optimized = compressed grains + markers + deflate: what VM Import accepts. */
export function isStreamOptimized(h: VmdkHeader): boolean {
  return (
    (h.flags & FLAG_COMPRESSED) !== 0 && (h.flags & FLAG_MARKERS) !== 0 && h.compressAlgorithm === COMPRESSION_DEFLATE
  );
}

/** `createType="..."` from the embedded text descriptor, if present. */
export function descriptorCreateType(descriptor: Buffer): string | undefined {
  const text = descriptor.toString('latin1').split('\0')[0] ?? '';
  return /^\s*createType\s*=\s*"([^"]*)"/m.exec(text)?.[1];
}

/** A stream VMDK's end-of-stream marker: a 512-byte sector of zeros (val 0, size 0, type 0 = EOS). */
export function isEndOfStreamMarker(sector: Buffer): boolean {
  return sector.length === SECTOR && sector.every((b) => b === 0);
}

/** Number of grain directory entries for this header. */
export function grainDirectoryEntries(h: VmdkHeader): number {
  const grains = (h.capacity + h.grainSize - 1n) / h.grainSize;
  const perGT = BigInt(h.numGTEsPerGT);
  return Number((grains + perGT - 1n) / perGT);
}
