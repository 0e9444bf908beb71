/**
 * A stream-optimized VMDK written front to back in one pass (VMware "Virtual Disk Format 5.0", section
 * "Stream-Optimized Compressed Sparse Extents"; qemu block/vmdk.c reads it): the sparse header with the
 * compressed-grains and markers flags and the grain directory "at the end", the embedded descriptor, then
 * for every grain that holds data a grain marker and its deflated bytes; after the grains of each grain
 * table that has any, a GT marker and the table; then the GD marker and the directory, the footer marker
 * and a copy of the header that says where the directory is, and the end-of-stream marker. All-zero grains
 * are not written (their table entry stays 0: "reads as zeros"), nor are tables with no grain.
 *
 * No npm library writes this format (the registry has no VMDK writer: searched "vmdk", "streamOptimized");
 * qemu-img does, but only to a file, and the point here is to send it while it is made, without scratch.
 *
 * The writer is a state machine over the grains that hold data, so the whole stream is a pure function of
 * the disk's bytes and the layout. It yields each record BEFORE updating its state, so during a yield
 * `checkpoint()` is the state before that record: resuming from it re-creates the same record and the
 * same bytes after it (the upload resumes mid-stream at a part boundary this way).
 */
import { SECTOR, VMDK_MAGIC, GD_AT_END } from './vmdk-header';

export const GRAIN_SECTORS = 128;
export const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
export const GTES_PER_GT = 512;
/** Sectors before the first grain: header (1), descriptor (20), padding to a grain, as qemu lays it out. */
const OVERHEAD_SECTORS = 128;
const DESCRIPTOR_OFFSET = 1;
const DESCRIPTOR_SECTORS = 20;
const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR;

const FLAG_NEWLINE_TEST = 1 << 0;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;
const MARKER_EOS = 0;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;

/** What the stream describes. */
export interface StreamLayout {
  /** The disk's size in bytes (a multiple of 512). */
  virtualBytes: number;
  /** The descriptor's CID: any 32-bit value; fixed per VM so a resumed stream is the same. */
  cid: number;
}

export function grainCount(virtualBytes: number): number {
  return Math.ceil(virtualBytes / GRAIN_BYTES);
}

function tableCount(virtualBytes: number): number {
  return Math.ceil(grainCount(virtualBytes) / GTES_PER_GT);
}

/** The 512-byte sparse extent header; `gdOffset` is GD_AT_END in the header and the real sector in the footer. */
export function sparseHeader(virtualBytes: number, gdOffset: bigint): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write(VMDK_MAGIC, 0, 'latin1');
  h.writeUInt32LE(3, 4); // version 3: stream-optimized
  h.writeUInt32LE(FLAG_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS, 8);
  h.writeBigUInt64LE(BigInt(virtualBytes / SECTOR), 12);
  h.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20);
  h.writeBigUInt64LE(BigInt(DESCRIPTOR_OFFSET), 28);
  h.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
  h.writeUInt32LE(GTES_PER_GT, 44);
  h.writeBigUInt64LE(0n, 48); // no redundant grain directory
  h.writeBigUInt64LE(gdOffset, 56);
  h.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
  h.writeUInt8(0, 72); // uncleanShutdown
  // The newline-detection characters: a file sent through a text-mode transfer would change them.
  h.write('\n \r\n', 73, 'latin1');
  h.writeUInt16LE(COMPRESSION_DEFLATE, 77);
  return h;
}

/** The embedded text descriptor (what qemu-img writes for a streamOptimized file, geometry from the size). */
export function descriptorText(layout: StreamLayout): string {
  const sectors = layout.virtualBytes / SECTOR;
  const cylinders = Math.min(Math.ceil(sectors / (16 * 63)), 16383);
  return [
    '# Disk DescriptorFile',
    'version=1',
    `CID=${(layout.cid >>> 0).toString(16).padStart(8, '0')}`,
    'parentCID=ffffffff',
    'createType="streamOptimized"',
    '',
    '# Extent description',
    `RW ${sectors} SPARSE "disk.vmdk"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    'ddb.geometry.heads = "16"',
    'ddb.geometry.sectors = "63"',
    'ddb.adapterType = "ide"',
    '',
  ].join('\n');
}

/** Header, descriptor and padding up to the first grain. */
function leadIn(layout: StreamLayout): Buffer {
  const lead = Buffer.alloc(OVERHEAD_SECTORS * SECTOR);
  sparseHeader(layout.virtualBytes, GD_AT_END).copy(lead, 0);
  lead.write(descriptorText(layout), DESCRIPTOR_OFFSET * SECTOR, 'latin1');
  return lead;
}

/** A metadata marker: numSectors of metadata follow it; size 0 says it is not a grain. */
function metadataMarker(numSectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(numSectors), 0);
  m.writeUInt32LE(0, 8);
  m.writeUInt32LE(type, 12);
  return m;
}

/**
 * A grain marker (its first sector: LBA, size) and the deflated bytes, padded to whole sectors; written
 * into `into` when it is given and large enough (the writer reuses one buffer: no garbage per grain).
 */
export function grainRecord(grain: number, compressed: Uint8Array, into?: Buffer): Buffer {
  const length = Math.ceil((12 + compressed.length) / SECTOR) * SECTOR;
  const record = into && into.length >= length ? into.subarray(0, length).fill(0) : Buffer.alloc(length);
  record.writeBigUInt64LE(BigInt(grain * GRAIN_SECTORS), 0);
  record.writeUInt32LE(compressed.length, 8);
  record.set(compressed, 12);
  return record;
}

/** One grain that holds data, deflated (zlib format, as qemu and VMware write it). */
export interface CompressedGrain {
  grain: number;
  data: Uint8Array;
}

/** Where the writer is; numbers and base64 only, so it travels in a heartbeat. */
export interface StreamCheckpoint {
  /** The next grain to look at. */
  grain: number;
  /** The grain table being filled, or -1. */
  table: number;
  /** That table's entries (sectors of grain markers), Uint32 LE, base64. */
  gt: string;
  /** Grain directory entries so far (sectors of tables; 0 = none), Uint32 LE, base64, trailing zeros cut. */
  gd: string;
  /** Byte offset in the stream where the next record starts. */
  offset: number;
}

/** A piece of the stream: `bytes` belong at `start`; valid until the next record is asked for (copy to keep). */
export interface StreamRecord {
  start: number;
  bytes: Buffer;
}

function u32ToBase64(values: Uint32Array, length: number): string {
  const b = Buffer.alloc(length * 4);
  for (let i = 0; i < length; i++) b.writeUInt32LE(values[i]!, i * 4);
  return b.toString('base64');
}

function base64ToU32(text: string, into: Uint32Array, what: string): void {
  const b = Buffer.from(text, 'base64');
  if (b.length % 4 !== 0 || b.length / 4 > into.length) throw new Error(`stream checkpoint: bad ${what}`);
  for (let i = 0; i < b.length / 4; i++) into[i] = b.readUInt32LE(i * 4);
}

export class StreamVmdkWriter {
  private readonly grains: number;
  private readonly gd: Uint32Array;
  private readonly gt = new Uint32Array(GTES_PER_GT);
  /** Where grain records are made: a record's bytes are valid until the writer is resumed. */
  private readonly scratch = Buffer.allocUnsafe(GRAIN_BYTES + 2 * SECTOR);
  private grain = 0;
  private table = -1;
  private offset = 0;

  constructor(
    private readonly layout: StreamLayout,
    from?: StreamCheckpoint
  ) {
    if (layout.virtualBytes <= 0 || layout.virtualBytes % SECTOR !== 0)
      throw new Error(`a stream-optimized VMDK needs whole sectors, not ${layout.virtualBytes} bytes`);
    this.grains = grainCount(layout.virtualBytes);
    this.gd = new Uint32Array(tableCount(layout.virtualBytes));
    if (from) {
      const valid = (n: number, max: number): boolean => Number.isSafeInteger(n) && n >= -1 && n <= max;
      if (!valid(from.grain, this.grains) || !valid(from.table, this.gd.length - 1) || !valid(from.offset, 2 ** 50))
        throw new Error('stream checkpoint: out of range');
      base64ToU32(from.gt, this.gt, 'grain table');
      base64ToU32(from.gd, this.gd, 'grain directory');
      this.grain = from.grain;
      this.table = from.table;
      this.offset = from.offset;
    }
  }

  /** The first grain the source must deliver (the ones before are in the stream already). */
  get nextGrain(): number {
    return this.grain;
  }

  /** The state before the record last yielded (or the start, or the end): resume from here. */
  checkpoint(): StreamCheckpoint {
    let gdLength = this.gd.length;
    while (gdLength > 0 && this.gd[gdLength - 1] === 0) gdLength--;
    return {
      grain: this.grain,
      table: this.table,
      gt: this.table >= 0 ? u32ToBase64(this.gt, GTES_PER_GT) : '',
      gd: u32ToBase64(this.gd, gdLength),
      offset: this.offset,
    };
  }

  /**
   * The stream from the checkpoint on. `source` yields the grains that hold data, in order, from
   * `nextGrain` on. Each record is yielded before the state moves past it.
   */
  async *records(source: AsyncIterable<CompressedGrain>): AsyncGenerator<StreamRecord> {
    if (this.offset === 0) {
      const lead = leadIn(this.layout);
      yield { start: 0, bytes: lead };
      this.offset = lead.length;
    }
    for await (const { grain, data } of source) {
      if (grain < this.grain || grain >= this.grains) throw new Error(`grain ${grain} out of order`);
      this.grain = grain;
      const table = Math.floor(grain / GTES_PER_GT);
      if (table !== this.table) {
        if (this.table >= 0) yield* this.closeTable();
        this.table = table;
        this.gt.fill(0);
      }
      const record = grainRecord(grain, data, this.scratch);
      yield { start: this.offset, bytes: record };
      this.gt[grain % GTES_PER_GT] = this.offset / SECTOR;
      this.offset += record.length;
      this.grain = grain + 1;
    }
    this.grain = this.grains;
    if (this.table >= 0) yield* this.closeTable();
    const tail = this.tail();
    yield { start: this.offset, bytes: tail };
    this.offset += tail.length;
  }

  /** Bytes of the stream so far (its length, once `records` is done). */
  get bytesWritten(): number {
    return this.offset;
  }

  /** The GT marker and the open table; the directory learns where the table is. */
  private *closeTable(): Generator<StreamRecord> {
    const record = Buffer.alloc(SECTOR + GT_SECTORS * SECTOR);
    metadataMarker(GT_SECTORS, MARKER_GT).copy(record, 0);
    for (let i = 0; i < GTES_PER_GT; i++) record.writeUInt32LE(this.gt[i]!, SECTOR + i * 4);
    yield { start: this.offset, bytes: record };
    this.gd[this.table] = this.offset / SECTOR + 1;
    this.offset += record.length;
    this.table = -1;
  }

  /** GD marker and directory, footer marker and footer, end of stream. */
  private tail(): Buffer {
    const gdSectors = Math.ceil((this.gd.length * 4) / SECTOR);
    const gdSector = this.offset / SECTOR + 1;
    const tail = Buffer.alloc(SECTOR + gdSectors * SECTOR + SECTOR + SECTOR + SECTOR);
    metadataMarker(gdSectors, MARKER_GD).copy(tail, 0);
    for (let i = 0; i < this.gd.length; i++) tail.writeUInt32LE(this.gd[i]!, SECTOR + i * 4);
    let at = SECTOR + gdSectors * SECTOR;
    metadataMarker(1, MARKER_FOOTER).copy(tail, at);
    sparseHeader(this.layout.virtualBytes, BigInt(gdSector)).copy(tail, at + SECTOR);
    at += 2 * SECTOR;
    metadataMarker(0, MARKER_EOS).copy(tail, at); // all zeros
    return tail;
  }
}
