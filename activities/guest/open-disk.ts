/** Opens an image (within the allowed roots) as a GuestDisk, its container found from its own bytes. */
import type { FileHandle } from 'node:fs/promises';
import { openImage } from '../disk-image/image-file';
import { FOOTER_SIZE, isVhdFooter } from '../disk-image/vhd-footer';
import { SECTOR, isVmdkHeader } from '../disk-image/vmdk-header';
import type { ContainerFormat, GuestDisk } from './disk-reader';
import { CountingFile } from './disk-reader';
import { rawDisk } from './raw-disk';
import { vhdDisk } from './vhd-disk';
import { vmdkDisk } from './vmdk-disk';

export interface OpenedDisk {
  disk: GuestDisk;
  handle: FileHandle;
}

/**
 * `format` is what the inventory declares (or undefined): a file whose bytes say otherwise is refused, as
 * pre-flight does, rather than read as something it is not.
 */
export async function openGuestDisk(
  file: string,
  format?: ContainerFormat,
  imageRoots: readonly string[] = []
): Promise<OpenedDisk> {
  const image = await openImage(file, imageRoots);
  try {
    const counting = new CountingFile(image.handle, image.size);
    const head = await counting.read(0, SECTOR);
    const tail =
      image.size >= FOOTER_SIZE ? await counting.read(image.size - FOOTER_SIZE, FOOTER_SIZE) : Buffer.alloc(0);
    const found: ContainerFormat = isVmdkHeader(head) ? 'VMDK' : isVhdFooter(tail) ? 'VHD' : 'RAW';
    if (format !== undefined && format !== found)
      throw new Error(`${file} is declared as ${format} but its bytes are those of a ${found} image`);
    const disk =
      found === 'VMDK' ? await vmdkDisk(counting) : found === 'VHD' ? await vhdDisk(counting) : rawDisk(counting);
    return { disk, handle: image.handle };
  } catch (err) {
    await image.handle.close();
    throw err;
  }
}
