/**
 * The guest disk as balena's file-disk `Disk`, the interface partitioninfo and ext2fs read through.
 * Read-only towards the image: libext2fs writes a little while it works (access times), and file-disk's
 * record-writes mode keeps those writes in memory, where later reads see them; nothing reaches the file.
 */
import type { ReadResult, WriteResult } from 'file-disk';
import { Disk } from 'file-disk';
import type { GuestDisk } from './disk-reader';

export class GuestFileDisk extends Disk {
  constructor(private readonly guest: GuestDisk) {
    super(true, true, false, true);
  }

  protected _getCapacity(): Promise<number> {
    return Promise.resolve(this.guest.virtualBytes);
  }

  protected async _read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<ReadResult> {
    const data = await this.guest.read(fileOffset, length);
    data.copy(buffer, bufferOffset);
    return { bytesRead: length, buffer };
  }

  protected _write(_buffer: Buffer, _offset: number, _length: number, _at: number): Promise<WriteResult> {
    return Promise.reject(new Error('the guest disk is read-only'));
  }

  protected _flush(): Promise<void> {
    return Promise.resolve();
  }
}
