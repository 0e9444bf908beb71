/** Types for balena's ext2fs (libext2fs in WebAssembly), which ships none: the part this folder uses. */
declare module 'ext2fs' {
  import type { Disk } from 'file-disk';

  interface Ext2Promises {
    readdir(path: string): Promise<string[]>;
    readFile(path: string): Promise<Buffer>;
    stat(path: string): Promise<{ isDirectory(): boolean; isFile(): boolean; size: number }>;
    lstat(path: string): Promise<{ isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }>;
    readlink(path: string): Promise<string>;
    /** A handle whose `fd` the calls below take (its own close() does not wait: close the fd instead). */
    open(path: string, flags: 'r'): Promise<{ fd: number }>;
    read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
    close(fd: number): Promise<void>;
  }
  export type { Ext2Promises };
  export function withMountedDisk<T>(
    disk: Disk,
    offset: number,
    fn: (fs: { promises: Ext2Promises }) => Promise<T>
  ): Promise<T>;
}
