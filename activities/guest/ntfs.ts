/**
 * A small read-only NTFS reader: enough to find a file by path (through the directories' $I30 index
 * B-trees), read it at any offset through its data runs, and count the volume's free clusters in $Bitmap.
 * It reads MFT records one at a time and never the whole volume. Layout: the NTFS on-disk format as
 * documented by the Linux-NTFS project ("NTFS Documentation", Richard Russon and Yuval Fledel).
 * Not handled: an $ATTRIBUTE_LIST (a file so fragmented that its attributes spill into other records),
 * compressed or encrypted files; they are reported, not misread.
 */
import type { GuestDisk } from './disk-reader';

const ATTR = { attributeList: 0x20, data: 0x80, indexRoot: 0x90, indexAllocation: 0xa0, end: 0xffffffff };
const RECORD = { mft: 0, bitmap: 6, root: 5 };

export interface NtfsBoot {
  bytesPerSector: number;
  clusterBytes: number;
  totalClusters: number;
  mftLcn: number;
  recordBytes: number;
  indexBlockBytes: number;
}

export function isNtfsBoot(sector: Buffer): boolean {
  return sector.length >= 512 && sector.toString('latin1', 3, 11) === 'NTFS    ';
}

/** A size field of the boot sector: clusters when positive, 2^-n bytes when negative. */
function sizeField(raw: number, clusterBytes: number): number {
  const signed = raw > 127 ? raw - 256 : raw;
  return signed < 0 ? 2 ** -signed : signed * clusterBytes;
}

export function parseNtfsBoot(sector: Buffer): NtfsBoot {
  const bytesPerSector = sector.readUInt16LE(0x0b);
  const spc = sector.readUInt8(0x0d);
  const clusterBytes = bytesPerSector * (spc > 0x80 ? 2 ** (256 - spc) : spc);
  return {
    bytesPerSector,
    clusterBytes,
    totalClusters: Math.floor((Number(sector.readBigUInt64LE(0x28)) * bytesPerSector) / clusterBytes),
    mftLcn: Number(sector.readBigUInt64LE(0x30)),
    recordBytes: sizeField(sector.readUInt8(0x40), clusterBytes),
    indexBlockBytes: sizeField(sector.readUInt8(0x44), clusterBytes),
  };
}

/** Undoes the update sequence ("fixup"): the last two bytes of each sector were swapped for a check value. */
function applyFixup(block: Buffer, bytesPerSector: number, what: string): Buffer {
  const usaOffset = block.readUInt16LE(4);
  const usaCount = block.readUInt16LE(6);
  const check = block.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const end = i * bytesPerSector - 2;
    if (end + 2 > block.length) break;
    if (block.readUInt16LE(end) !== check) throw new Error(`NTFS ${what}: torn write (update sequence mismatch)`);
    block.writeUInt16LE(block.readUInt16LE(usaOffset + 2 * i), end);
  }
  return block;
}

interface Run {
  vcn: number;
  lcn: number | undefined; // undefined: sparse
  clusters: number;
}

export interface Attribute {
  type: number;
  name: string;
  resident: boolean;
  /** Resident attributes: the value. */
  value?: Buffer;
  runs?: Run[];
  dataSize: number;
  flags: number;
}

function decodeRuns(buf: Buffer, at: number): Run[] {
  const runs: Run[] = [];
  let vcn = 0;
  let lcn = 0;
  while (at < buf.length && buf[at] !== 0) {
    const head = buf[at]!;
    const lenBytes = head & 0x0f;
    const offBytes = head >> 4;
    if (lenBytes > 6 || offBytes > 6) throw new Error('NTFS: a data run wider than 48 bits');
    const clusters = buf.readUIntLE(at + 1, lenBytes);
    if (offBytes === 0) runs.push({ vcn, lcn: undefined, clusters });
    else {
      lcn += buf.readIntLE(at + 1 + lenBytes, offBytes);
      runs.push({ vcn, lcn, clusters });
    }
    vcn += clusters;
    at += 1 + lenBytes + offBytes;
  }
  return runs;
}

function parseAttributes(record: Buffer): Attribute[] {
  const out: Attribute[] = [];
  let at = record.readUInt16LE(0x14);
  while (at + 8 <= record.length) {
    const type = record.readUInt32LE(at);
    if (type === ATTR.end) break;
    const length = record.readUInt32LE(at + 4);
    if (length === 0 || at + length > record.length) break;
    const nameLength = record.readUInt8(at + 9);
    const name = record.toString(
      'utf16le',
      at + record.readUInt16LE(at + 10),
      at + record.readUInt16LE(at + 10) + 2 * nameLength
    );
    const flags = record.readUInt16LE(at + 12);
    if (record.readUInt8(at + 8) === 0) {
      const size = record.readUInt32LE(at + 0x10);
      const off = at + record.readUInt16LE(at + 0x14);
      out.push({ type, name, resident: true, value: record.subarray(off, off + size), dataSize: size, flags });
    } else {
      const runs = decodeRuns(record.subarray(0, at + length), at + record.readUInt16LE(at + 0x20));
      out.push({ type, name, resident: false, runs, dataSize: Number(record.readBigUInt64LE(at + 0x30)), flags });
    }
    at += length;
  }
  return out;
}

export class NtfsVolume {
  private mftRuns: Run[] = [];

  private constructor(
    private readonly disk: GuestDisk,
    private readonly offset: number,
    readonly boot: NtfsBoot
  ) {}

  static async open(disk: GuestDisk, offset: number): Promise<NtfsVolume> {
    const boot = parseNtfsBoot(await disk.read(offset, 512));
    if (boot.clusterBytes === 0 || boot.recordBytes === 0)
      throw new Error('NTFS boot sector: zero cluster or record size');
    const volume = new NtfsVolume(disk, offset, boot);
    // Record 0 ($MFT) sits at the MFT's first cluster and maps where every other record lives.
    const mft = await volume.readRecordAt(boot.mftLcn * boot.clusterBytes, 0);
    const data = parseAttributes(mft).find((a) => a.type === ATTR.data && a.name === '');
    if (!data?.runs) throw new Error('NTFS: $MFT has no data runs');
    volume.mftRuns = data.runs;
    return volume;
  }

  private async readRecordAt(byteOffset: number, number: number): Promise<Buffer> {
    const record = await this.disk.read(this.offset + byteOffset, this.boot.recordBytes);
    if (record.toString('latin1', 0, 4) !== 'FILE') throw new Error(`NTFS MFT record ${number} is not a FILE record`);
    return applyFixup(record, this.boot.bytesPerSector, `MFT record ${number}`);
  }

  /** Where byte `at` of a non-resident attribute lies on the volume, and how many bytes follow in that run. */
  private locate(runs: Run[], at: number): { byte: number | undefined; left: number } {
    const c = this.boot.clusterBytes;
    const vcn = Math.floor(at / c);
    const run = runs.find((r) => vcn >= r.vcn && vcn < r.vcn + r.clusters);
    if (!run) return { byte: undefined, left: c - (at % c) };
    const left = (run.vcn + run.clusters) * c - at;
    return { byte: run.lcn === undefined ? undefined : run.lcn * c + (at - run.vcn * c), left };
  }

  private async readRuns(runs: Run[], at: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { byte, left } = this.locate(runs, at + done);
      const take = Math.min(left, length - done);
      if (byte !== undefined) (await this.disk.read(this.offset + byte, take)).copy(out, done);
      done += take;
    }
    return out;
  }

  async attributes(number: number): Promise<Attribute[]> {
    const position = number * this.boot.recordBytes;
    const { byte } = this.locate(this.mftRuns, position);
    if (byte === undefined) throw new Error(`NTFS MFT record ${number} lies outside the MFT`);
    return parseAttributes(await this.readRecordAt(byte, number));
  }

  /** Reads `length` bytes at `at` of an attribute's value, resident or not. */
  async readAttribute(attr: Attribute, at: number, length: number): Promise<Buffer> {
    const size = Math.max(0, Math.min(length, attr.dataSize - at));
    if (attr.value) return Buffer.from(attr.value.subarray(at, at + size));
    if (attr.flags & 0x4001) throw new Error('NTFS: compressed or encrypted file data is not read');
    return this.readRuns(attr.runs ?? [], at, size);
  }

  /** The MFT record number of `path` (components separated by / or \), or undefined when it does not exist. */
  async lookup(path: string): Promise<number | undefined> {
    let current = RECORD.root;
    for (const part of path.split(/[\\/]/).filter(Boolean)) {
      const next = await this.findInDirectory(current, part);
      if (next === undefined) return undefined;
      current = next;
    }
    return current;
  }

  /** The unnamed $DATA attribute of a record. */
  async dataOf(number: number): Promise<Attribute> {
    const attrs = await this.attributes(number);
    const data = attrs.find((a) => a.type === ATTR.data && a.name === '');
    if (data) return data;
    if (attrs.some((a) => a.type === ATTR.attributeList))
      throw new Error(`NTFS record ${number}: attribute list not supported`);
    throw new Error(`NTFS record ${number} has no data`);
  }

  /** Descends the directory's $I30 B-tree, comparing names case-insensitively as NTFS collates them. */
  private async findInDirectory(dir: number, name: string): Promise<number | undefined> {
    const attrs = await this.attributes(dir);
    const root = attrs.find((a) => a.type === ATTR.indexRoot && a.name === '$I30');
    if (!root?.value) return undefined;
    const allocation = attrs.find((a) => a.type === ATTR.indexAllocation && a.name === '$I30');
    const wanted = name.toUpperCase();
    let node = root.value;
    let header = 0x10;
    for (let depth = 0; depth < 32; depth++) {
      const found = scanIndexNode(node, header, wanted);
      if (found.record !== undefined) return found.record;
      if (found.child === undefined || !allocation) return undefined;
      // Index blocks are numbered in clusters, or in 512-byte units when a block is smaller than a cluster.
      const unit = this.boot.indexBlockBytes >= this.boot.clusterBytes ? this.boot.clusterBytes : 512;
      const block = await this.readAttribute(allocation, found.child * unit, this.boot.indexBlockBytes);
      if (block.toString('latin1', 0, 4) !== 'INDX') return undefined;
      node = applyFixup(block, this.boot.bytesPerSector, 'index block');
      header = 0x18;
    }
    return undefined;
  }

  /** Free bytes: clusters whose bit in $Bitmap is clear. */
  async freeBytes(): Promise<number> {
    const bitmap = await this.dataOf(RECORD.bitmap);
    const bytes = Math.ceil(this.boot.totalClusters / 8);
    let used = 0;
    const chunk = 1024 * 1024;
    for (let at = 0; at < bytes; at += chunk) {
      const part = await this.readAttribute(bitmap, at, Math.min(chunk, bytes - at));
      for (let i = 0; i < part.length; i++) {
        const bits =
          at + i === bytes - 1 && this.boot.totalClusters % 8
            ? part[i]! & ((1 << (this.boot.totalClusters % 8)) - 1)
            : part[i]!;
        used += POPCOUNT[bits]!;
      }
    }
    return (this.boot.totalClusters - used) * this.boot.clusterBytes;
  }
}

const POPCOUNT = Array.from({ length: 256 }, (_, n) => n.toString(2).split('1').length - 1);

/** One index node: the entry named `wanted`, or the child block (VCN) to descend into. */
function scanIndexNode(node: Buffer, header: number, wanted: string): { record?: number; child?: number } {
  let at = header + node.readUInt32LE(header);
  const end = header + node.readUInt32LE(header + 4);
  while (at + 0x10 <= Math.min(end, node.length)) {
    const length = node.readUInt16LE(at + 8);
    const flags = node.readUInt32LE(at + 0x0c);
    const child = flags & 1 ? Number(node.readBigUInt64LE(at + length - 8)) : undefined;
    if (flags & 2) return { child }; // the last entry holds no name, only what sorts after every other
    const nameLength = node.readUInt8(at + 0x10 + 0x40);
    const entryName = node.toString('utf16le', at + 0x10 + 0x42, at + 0x10 + 0x42 + 2 * nameLength).toUpperCase();
    if (entryName === wanted) return { record: Number(node.readBigUInt64LE(at) & 0xffffffffffffn) };
    if (wanted < entryName) return { child };
    if (length === 0) break;
    at += length;
  }
  return {};
}
