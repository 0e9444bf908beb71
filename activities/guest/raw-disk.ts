/** RAW: the file is the disk. */
import type { CountingFile, GuestDisk } from './disk-reader';
import { ContainerDisk } from './disk-reader';

export function rawDisk(file: CountingFile): GuestDisk {
  return new ContainerDisk('RAW', 'RAW disk', file.size, file, (position, length) => file.read(position, length));
}
