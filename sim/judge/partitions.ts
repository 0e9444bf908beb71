/**
 * The disk's partition table, read from the raw bytes as a BIOS and VM Import read it: the MBR at sector
 * 0 (signature 55 AA, four entries), logical partitions through the extended partition's EBR chain, and a
 * GPT recognised by its protective MBR entry (type EE) together with its header signature "EFI PART" at LBA 1
 * (UEFI spec, GPT header). Without the header an EE entry is just a bad entry: random bytes behind 55 AA hit
 * type EE in one of four entries about 1.6 % of the time, and must still read as "no valid partitions".
 */
import type { FileHandle } from 'node:fs/promises';

const SECTOR = 512;
const EXTENDED = new Set([0x05, 0x0f, 0x85]);

export interface Partition {
  /** 1-4 primary, 5+ logical (Linux numbering). */
  number: number;
  type: number;
  bootable: boolean;
  /** Byte offset and length on the disk. */
  offset: number;
  length: number;
}

export type PartitionTable = { kind: 'none'; why: string } | { kind: 'gpt' } | { kind: 'mbr'; partitions: Partition[] };

async function sector(disk: FileHandle, lba: number): Promise<Buffer> {
  const buf = Buffer.alloc(SECTOR);
  await disk.read(buf, 0, SECTOR, lba * SECTOR);
  return buf;
}

interface Entry {
  status: number;
  type: number;
  start: number;
  sectors: number;
}

function entries(mbr: Buffer): Entry[] {
  return [0, 1, 2, 3].map((i) => {
    const at = 446 + i * 16;
    return {
      status: mbr[at]!,
      type: mbr[at + 4]!,
      start: mbr.readUInt32LE(at + 8),
      sectors: mbr.readUInt32LE(at + 12),
    };
  });
}

/** An entry a BIOS would accept: known status byte, a type, and an extent inside the disk. */
function plausible(e: Entry, diskSectors: number): boolean {
  return (
    (e.status === 0 || e.status === 0x80) &&
    e.type !== 0 &&
    e.sectors > 0 &&
    e.start > 0 &&
    e.start + e.sectors <= diskSectors
  );
}

export async function readPartitionTable(disk: FileHandle, diskBytes: number): Promise<PartitionTable> {
  if (diskBytes < SECTOR) return { kind: 'none', why: 'shorter than one sector' };
  const mbr = await sector(disk, 0);
  if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) return { kind: 'none', why: 'no MBR signature' };
  const diskSectors = Math.floor(diskBytes / SECTOR);
  const primary = entries(mbr);
  if (primary.some((e) => e.type === 0xee)) {
    const header = await sector(disk, 1);
    if (header.toString('latin1', 0, 8) === 'EFI PART') return { kind: 'gpt' };
    return { kind: 'none', why: 'protective MBR entry (type EE) without a GPT header' };
  }
  const used = primary.filter((e) => e.type !== 0);
  // Random bytes behind a 55 AA signature fail here: every used entry must be plausible.
  if (used.length === 0 || !used.every((e) => plausible(e, diskSectors)))
    return { kind: 'none', why: 'no plausible partition entries' };
  const partitions: Partition[] = [];
  primary.forEach((e, i) => {
    if (e.type !== 0 && !EXTENDED.has(e.type)) {
      partitions.push({
        number: i + 1,
        type: e.type,
        bootable: e.status === 0x80,
        offset: e.start * SECTOR,
        length: e.sectors * SECTOR,
      });
    }
  });
  const extended = primary.find((e) => EXTENDED.has(e.type));
  if (extended) partitions.push(...(await logicalPartitions(disk, extended.start, diskSectors)));
  return { kind: 'mbr', partitions };
}

/** The EBR chain: each EBR holds one logical partition (relative to itself) and the next EBR (relative to the extended partition). */
async function logicalPartitions(disk: FileHandle, extendedStart: number, diskSectors: number): Promise<Partition[]> {
  const found: Partition[] = [];
  let ebr = extendedStart;
  for (let n = 5; n < 5 + 128; n++) {
    if (ebr >= diskSectors) break;
    const buf = await sector(disk, ebr);
    if (buf[510] !== 0x55 || buf[511] !== 0xaa) break;
    const [logical, next] = entries(buf);
    if (logical && logical.type !== 0) {
      const start = ebr + logical.start;
      if (plausible({ ...logical, start }, diskSectors)) {
        found.push({
          number: n,
          type: logical.type,
          bootable: logical.status === 0x80,
          offset: start * SECTOR,
          length: logical.sectors * SECTOR,
        });
      }
    }
    if (!next || next.type === 0 || next.start === 0) break;
    ebr = extendedStart + next.start;
  }
  return found;
}
