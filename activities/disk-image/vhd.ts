/** VHD: fixed or dynamic (not differencing), footer copies identical, block table within the file. */
import type { ApplicationFailure } from '@temporalio/common';
import type { FileHandle } from 'node:fs/promises';
import {
  FOOTER_SIZE,
  VHD_DISK_TYPES,
  VHD_MAX_BYTES,
  parseVhdDynamicHeader,
  parseVhdFooter,
  vhdBitmapBytes,
} from './vhd-footer';
import { SECTOR } from './vmdk-header';
import { readAt } from './image-file';
import type { ImageInfo } from './limits';
import { REEXPORT, damaged, fixCommand, gib, sizeText, unsupported } from './rejections';

export function hasGptHeader(sector1: Buffer): boolean {
  return sector1.length >= 8 && sector1.toString('latin1', 0, 8) === 'EFI PART';
}

export function gptRejection(file: string): ApplicationFailure {
  return unsupported(
    file,
    'a GPT-partitioned disk (EC2 would fail with "No bootable partition found")',
    'convert the partition table to MBR inside the VM (e.g. `sgdisk --gpttombr`) and export the disk again; GPT/UEFI disks need ImportImage instead'
  );
}

export async function inspectVhd(
  handle: FileHandle,
  size: number,
  head: Buffer,
  tail: Buffer,
  file: string
): Promise<ImageInfo> {
  const footer = parseVhdFooter(tail);
  if (!footer.checksumValid)
    throw damaged(file, 'the VHD footer checksum is wrong', `${REEXPORT}, or: ${fixCommand(file, 'vpc', 'fixed-vhd')}`);
  const type = VHD_DISK_TYPES[footer.diskType];
  if (type === 'differencing') {
    throw unsupported(
      file,
      'a differencing VHD (it needs its parent disk)',
      `${fixCommand(file, 'vpc', 'fixed-vhd')} (with the parent VHD beside it), or merge it into its parent first`
    );
  }
  if (type === undefined) throw damaged(file, `the VHD footer has an unknown disk type ${footer.diskType}`, REEXPORT);
  if (footer.currentSize > BigInt(VHD_MAX_BYTES)) {
    throw damaged(
      file,
      `its footer claims a ${gib(footer.currentSize)} disk, more than the ${gib(VHD_MAX_BYTES)} a VHD can hold`,
      REEXPORT
    );
  }
  const virtualBytes = Number(footer.currentSize);
  if (type === 'fixed') {
    if (size - FOOTER_SIZE !== virtualBytes) {
      throw damaged(
        file,
        `the fixed VHD holds ${size - FOOTER_SIZE} data bytes but its footer says ${virtualBytes}`,
        REEXPORT
      );
    }
    if (hasGptHeader(await readAt(handle, SECTOR, 8))) throw gptRejection(file);
    return { format: 'VHD', kind: 'fixed VHD', imageBytes: size, virtualBytes };
  }
  // Dynamic: the copy of the footer at offset 0 must equal the one at the end (else EC2: "Footers not identical").
  if (!head.subarray(0, FOOTER_SIZE).equals(tail)) {
    throw damaged(
      file,
      'the footer copies at the start and the end of the dynamic VHD differ (EC2 reports "Footers not identical")',
      `${REEXPORT}, or: ${fixCommand(file, 'vpc', 'fixed-vhd')}`
    );
  }
  const dataOffset = Number(footer.dataOffset);
  if (dataOffset + 1024 > size - FOOTER_SIZE)
    throw damaged(file, 'the dynamic VHD header lies past the end of the file', REEXPORT);
  const dyn = parseVhdDynamicHeaderOrNull(await readAt(handle, dataOffset, 1024));
  if (!dyn) throw damaged(file, 'the dynamic VHD header (cxsparse) is missing or its checksum is wrong', REEXPORT);
  checkVhdBlockTableSize(dyn, virtualBytes, file);
  const batStart = Number(dyn.tableOffset);
  if (batStart + dyn.maxTableEntries * 4 > size - FOOTER_SIZE)
    throw damaged(file, 'the dynamic VHD block table lies past the end of the file', REEXPORT);
  const bat = await readAt(handle, batStart, dyn.maxTableEntries * 4);
  const blockBytes = vhdBitmapBytes(dyn.blockSize) + dyn.blockSize;
  for (let i = 0; i < dyn.maxTableEntries; i++) {
    const sector = bat.readUInt32BE(i * 4);
    if (sector === 0xffffffff) continue;
    if (sector * SECTOR + blockBytes > size - FOOTER_SIZE)
      throw damaged(file, `block ${i} of the dynamic VHD lies past the end of the file (truncated)`, REEXPORT);
  }
  return { format: 'VHD', kind: 'dynamic VHD', imageBytes: size, virtualBytes };
}

/**
 * The spec sizes the block table to the disk (entries = disk size / block size). A table for more than the
 * largest VHD is garbage (and reading it could mean gigabytes); one that covers less than the footer's size
 * leaves the rest of the disk nowhere to live (qemu: "Page table too small").
 */
export function checkVhdBlockTableSize(
  dyn: { maxTableEntries: number; blockSize: number },
  virtualBytes: number,
  file: string
): void {
  const blocks = `${dyn.maxTableEntries} blocks of ${sizeText(dyn.blockSize)}`;
  if (dyn.maxTableEntries > Math.ceil(VHD_MAX_BYTES / dyn.blockSize)) {
    throw damaged(
      file,
      `its block table declares ${blocks}, more than the ${gib(VHD_MAX_BYTES)} a VHD can hold`,
      REEXPORT
    );
  }
  const covered = dyn.maxTableEntries * dyn.blockSize;
  if (covered < virtualBytes) {
    throw damaged(
      file,
      `its footer claims a ${sizeText(virtualBytes)} disk but its block table covers only ${sizeText(covered)} (${blocks})`,
      REEXPORT
    );
  }
}

export function parseVhdDynamicHeaderOrNull(block: Buffer): ReturnType<typeof parseVhdDynamicHeader> | null {
  try {
    const header = parseVhdDynamicHeader(block);
    return header.checksumValid && header.blockSize > 0 && header.blockSize % SECTOR === 0 ? header : null;
  } catch {
    return null;
  }
}
