/**
 * Opens an image (within the allowed roots) as a GuestDisk, its container found from its own bytes. An OVA
 * is opened at its boot disk: the stream-optimized VMDK at a byte range inside the tar (found by
 * ../ova/ova.ts, the same code pre-flight runs), read in place through an offset, nothing extracted.
 */
import type { FileHandle } from 'node:fs/promises';
import { openImage } from '../disk-image/image-file';
import { inspectOva, isTarHeader } from '../ova/ova';
import { FOOTER_SIZE, isVhdFooter } from '../disk-image/vhd-footer';
import { SECTOR, isVmdkHeader } from '../disk-image/vmdk-header';
import type { ContainerFormat, GuestDisk } from './disk-reader';
import { CountingFile, guestReaderTally } from './disk-reader';
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
/** What the inventory may declare of a file the reader opens: a container, or an OVA holding one. */
export type GuestFileFormat = ContainerFormat | 'OVA';

/** The handle, its reads counted (what ova.ts reads of the tar and of the VMDK's tables). */
function countedHandle(handle: FileHandle, count: { bytesRead: number }): FileHandle {
  const view = {
    read: async (buffer: Buffer, offset: number, length: number, position: number) => {
      const result = await handle.read(buffer, offset, length, position);
      count.bytesRead += result.bytesRead;
      guestReaderTally.bytesRead += result.bytesRead;
      return result;
    },
  };
  return view as unknown as FileHandle;
}

export async function openGuestDisk(
  file: string,
  format?: GuestFileFormat,
  imageRoots: readonly string[] = []
): Promise<OpenedDisk> {
  const image = await openImage(file, imageRoots);
  guestReaderTally.disksOpened++;
  try {
    const whole = new CountingFile(image.handle, image.size);
    const head = await whole.read(0, SECTOR);
    if (isTarHeader(head)) {
      if (format !== undefined && format !== 'OVA')
        throw new Error(`${file} is declared as ${format} but its bytes are those of an OVA (a tar archive)`);
      const tar = { bytesRead: whole.bytesRead };
      const ova = await inspectOva(countedHandle(image.handle, tar), image.size, file);
      const vmdk = await vmdkDisk(new CountingFile(image.handle, ova.imageBytes, ova.imageOffset ?? 0));
      const disk: GuestDisk = {
        format: 'VMDK',
        kind: `${vmdk.kind} inside the OVA`,
        virtualBytes: vmdk.virtualBytes,
        read: (position, length) => vmdk.read(position, length),
        get bytesRead() {
          return tar.bytesRead + vmdk.bytesRead;
        },
      };
      return { disk, handle: image.handle };
    }
    const tail = image.size >= FOOTER_SIZE ? await whole.read(image.size - FOOTER_SIZE, FOOTER_SIZE) : Buffer.alloc(0);
    const found: ContainerFormat = isVmdkHeader(head) ? 'VMDK' : isVhdFooter(tail) ? 'VHD' : 'RAW';
    if (format !== undefined && format !== found)
      throw new Error(`${file} is declared as ${format} but its bytes are those of a ${found} image`);
    const disk = found === 'VMDK' ? await vmdkDisk(whole) : found === 'VHD' ? await vhdDisk(whole) : rawDisk(whole);
    return { disk, handle: image.handle };
  } catch (err) {
    await image.handle.close();
    throw err;
  }
}
