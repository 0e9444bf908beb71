/**
 * VHD: a fixed VHD is the disk followed by its footer; a dynamic one maps each block of the disk through
 * its block allocation table (BAT) to a sector bitmap and the block's data, or to nothing (zeros). The
 * footer and header come from the parsers of activities/disk-image (Microsoft's VHD specification).
 */
import {
  FOOTER_SIZE,
  VHD_DISK_TYPES,
  parseVhdDynamicHeader,
  parseVhdFooter,
  vhdBitmapBytes,
} from '../disk-image/vhd-footer';
import type { CountingFile, GuestDisk } from './disk-reader';
import { ContainerDisk, readThroughBlocks } from './disk-reader';

const SECTOR = 512;
const UNALLOCATED = 0xffffffff;

export async function vhdDisk(file: CountingFile): Promise<GuestDisk> {
  const footer = parseVhdFooter(await file.read(file.size - FOOTER_SIZE, FOOTER_SIZE));
  const type = VHD_DISK_TYPES[footer.diskType];
  const virtualBytes = Number(footer.currentSize);
  if (type === 'fixed') {
    return new ContainerDisk('VHD', 'fixed VHD', virtualBytes, file, async (position, length) => {
      const inside = Math.max(0, Math.min(length, virtualBytes - position));
      const data = await file.read(position, inside);
      return inside === length ? data : Buffer.concat([data, Buffer.alloc(length - inside)]);
    });
  }
  if (type !== 'dynamic') throw new Error(`a ${type ?? 'unknown'} VHD cannot be read on its own`);
  const dyn = parseVhdDynamicHeader(await file.read(Number(footer.dataOffset), 1024));
  // The whole table at once: 4 bytes per block (200 KiB for 100 GiB in 2 MiB blocks), read once.
  const bat = await file.read(Number(dyn.tableOffset), dyn.maxTableEntries * 4);
  const bitmap = vhdBitmapBytes(dyn.blockSize);
  const readPart = async (block: number, offset: number, length: number): Promise<Buffer | undefined> => {
    if (block >= dyn.maxTableEntries) return undefined;
    const sector = bat.readUInt32BE(block * 4);
    if (sector === UNALLOCATED) return undefined;
    return file.read(sector * SECTOR + bitmap + offset, length);
  };
  return new ContainerDisk('VHD', 'dynamic VHD', virtualBytes, file, (position, length) =>
    readThroughBlocks(position, length, dyn.blockSize, virtualBytes, readPart)
  );
}
