/**
 * VMDK sparse extent (stream-optimized, and monolithicSparse for good measure): the disk is cut into grains;
 * the grain directory points at grain tables, whose entries point at each grain (for a stream-optimized
 * VMDK, at a marker of 12 bytes, the grain's first sector and its compressed length, followed by the
 * deflated grain). Only the grain tables and grains a read touches are read, and only those grains are
 * inflated. The header comes from activities/disk-image/vmdk-header.ts (VMware "Virtual Disk Format 5.0").
 */
import { inflateRawSync, inflateSync } from 'node:zlib';
import {
  GD_AT_END,
  SECTOR,
  grainDirectoryEntries,
  isStreamOptimized,
  parseVmdkHeader,
  vmdkHeaderProblem,
} from '../disk-image/vmdk-header';
import type { CountingFile, GuestDisk } from './disk-reader';
import { ContainerDisk, readThroughBlocks } from './disk-reader';

/** Inflated grains kept for reads that come back (a file system reads its metadata more than once). */
const GRAIN_CACHE = 64;

export async function vmdkDisk(file: CountingFile): Promise<GuestDisk> {
  const header = parseVmdkHeader(await file.read(0, SECTOR));
  const problem = vmdkHeaderProblem(header, file.size);
  if (problem) throw new Error(`the VMDK header is not valid: ${problem}`);
  const stream = isStreamOptimized(header);
  let gdOffset = header.gdOffset;
  if (gdOffset === GD_AT_END) {
    // A stream VMDK written front to back keeps its directory at the end: the footer (a copy of the header
    // that knows where) is the second-to-last sector, before the end-of-stream marker.
    gdOffset = parseVmdkHeader(await file.read(file.size - 2 * SECTOR, SECTOR)).gdOffset;
  }
  const grainBytes = Number(header.grainSize) * SECTOR;
  const perTable = header.numGTEsPerGT;
  const virtualBytes = Number(header.capacity) * SECTOR;
  const entries = grainDirectoryEntries(header);
  const directory = await file.read(Number(gdOffset) * SECTOR, entries * 4);
  const tables = new Map<number, Buffer>();
  const grains = new Map<number, Buffer>();

  const grainSector = async (grain: number): Promise<number> => {
    const dirIndex = Math.floor(grain / perTable);
    if (dirIndex >= entries) return 0;
    let table = tables.get(dirIndex);
    if (!table) {
      const tableSector = directory.readUInt32LE(dirIndex * 4);
      table = tableSector === 0 ? Buffer.alloc(perTable * 4) : await file.read(tableSector * SECTOR, perTable * 4);
      tables.set(dirIndex, table);
    }
    return table.readUInt32LE((grain % perTable) * 4);
  };

  const inflateGrain = async (grain: number, sector: number): Promise<Buffer> => {
    const cached = grains.get(grain);
    if (cached) return cached;
    const marker = await file.read(sector * SECTOR, 12);
    const lba = Number(marker.readBigUInt64LE(0));
    if (lba !== grain * Number(header.grainSize))
      throw new Error(`VMDK grain ${grain}: its marker names sector ${lba} (the file is damaged)`);
    const compressed = await file.read(sector * SECTOR + 12, marker.readUInt32LE(8));
    let data: Buffer;
    try {
      data = inflateSync(compressed);
    } catch {
      data = inflateRawSync(compressed); // some writers leave out the zlib header
    }
    if (grains.size >= GRAIN_CACHE) grains.delete(grains.keys().next().value as number);
    grains.set(grain, data);
    return data;
  };

  const readPart = async (grain: number, offset: number, length: number): Promise<Buffer | undefined> => {
    const sector = await grainSector(grain);
    if (sector <= 1) return undefined; // 0: never written, 1: written as zeros
    if (!stream) return file.read(sector * SECTOR + offset, length);
    const data = await inflateGrain(grain, sector);
    const part = Buffer.alloc(length); // a short grain (the disk's last) reads as zeros past its end
    data.copy(part, 0, offset, Math.min(data.length, offset + length));
    return part;
  };

  return new ContainerDisk(
    'VMDK',
    stream ? 'stream-optimized VMDK' : 'sparse VMDK',
    virtualBytes,
    file,
    (position, length) => readThroughBlocks(position, length, grainBytes, virtualBytes, readPart)
  );
}
