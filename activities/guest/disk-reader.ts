/**
 * A random-access view of the virtual disk inside an image file, whatever its container, that reads only
 * the blocks asked for and counts every byte it reads from the file (inspection reads metadata, not the
 * disk: the count proves it).
 */
import type { FileHandle } from 'node:fs/promises';

export type ContainerFormat = 'RAW' | 'VMDK' | 'VHD';

export interface GuestDisk {
  readonly format: ContainerFormat;
  /** For humans: `RAW disk`, `stream-optimized VMDK`, `dynamic VHD`, ... */
  readonly kind: string;
  /** Size of the virtual disk in bytes. */
  readonly virtualBytes: number;
  /** `length` bytes of the virtual disk from `position`; unallocated ranges and the range past the end read as zeros. */
  read(position: number, length: number): Promise<Buffer>;
  /** Bytes read from the image file so far. */
  readonly bytesRead: number;
}

/**
 * What this process's guest reader has done since it started: disks opened for inspection and bytes read
 * from image files. A metric, not a mock: `validate`'s "each distinct image inspected once" is measured
 * with it (test/unit/validate-guests-once.test.ts), and a caller can log it.
 */
export const guestReaderTally = { disksOpened: 0, bytesRead: 0 };

/**
 * Reads of the image file, counted. `base` is where the disk starts inside the file (an OVA's member):
 * positions are the disk's, `size` is the disk's length.
 */
export class CountingFile {
  bytesRead = 0;
  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    private readonly base = 0
  ) {}

  /** Exactly `length` bytes at `position`, zero-filled past the end of the file. */
  async read(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.alloc(length);
    let filled = 0;
    while (filled < length && position + filled < this.size) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, this.base + position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.bytesRead += filled;
    guestReaderTally.bytesRead += filled;
    return buffer;
  }
}

/** A GuestDisk from a container's read function over a counted file. */
export class ContainerDisk implements GuestDisk {
  constructor(
    readonly format: ContainerFormat,
    readonly kind: string,
    readonly virtualBytes: number,
    private readonly file: CountingFile,
    private readonly reader: (position: number, length: number) => Promise<Buffer>
  ) {}

  read(position: number, length: number): Promise<Buffer> {
    return this.reader(position, length);
  }

  get bytesRead(): number {
    return this.file.bytesRead;
  }
}

/**
 * Splits a read of the virtual disk into the container's fixed-size blocks (VHD blocks, VMDK grains):
 * `readPart(block, offsetInBlock, length)` returns that part of the block, or undefined where nothing is
 * allocated (zeros).
 */
export async function readThroughBlocks(
  position: number,
  length: number,
  blockBytes: number,
  virtualBytes: number,
  readPart: (block: number, offsetInBlock: number, length: number) => Promise<Buffer | undefined>
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const at = position + done;
    if (at >= virtualBytes) break;
    const block = Math.floor(at / blockBytes);
    const inBlock = at - block * blockBytes;
    const take = Math.min(blockBytes - inBlock, length - done, virtualBytes - at);
    const part = await readPart(block, inBlock, take);
    if (part) part.copy(out, done, 0, take);
    done += take;
  }
  return out;
}
