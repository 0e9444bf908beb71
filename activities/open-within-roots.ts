/**
 * Opening a file an inventory names (a disk image, a user-data file) so that the inventory cannot make the
 * worker read anything else: an absolute path to a regular file, inside the configured roots, never on a
 * kernel pseudo file system (/proc, /sys), and never blocking (a FIFO or device is refused, not read).
 *
 * The checks that matter are made on the OPEN descriptor, so they cannot be raced: a check of the path
 * followed by an open of the same path lets a directory be swapped for a symbolic link in between (the
 * open then follows it out of the roots). After opening, the kernel says which file the descriptor holds
 * (/proc/self/fd/N), and that path is what is checked against the roots; fstat on the descriptor says
 * whether it is a regular file. The checks of the path before opening only give better messages and
 * avoid opening a device at all in the common case.
 *
 * Callers turn a refusal into their own failure (image-file.ts, user-data.ts): the same rules, each
 * worded for what the operator must fix.
 */
import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, open, readFile, readlink, realpath, stat, statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { ImageIdentity } from '../common/contracts/activity-io';

/** Which file: device and inode numbers, as decimal strings (an inode number can exceed 2^53). */
export type FileIdentity = ImageIdentity;

export interface OpenedFile {
  handle: FileHandle;
  /** The real path of the file the descriptor holds (as the kernel reports it). */
  realPath: string;
  size: number;
  identity: FileIdentity;
}

/** Why a file was not opened; the caller words the message. */
export type OpenRefusal =
  | { reason: 'not-absolute' }
  /** realpath failed: the path leads nowhere (or loops). */
  | { reason: 'unresolvable'; error: unknown; loop: boolean; danglingTarget?: string }
  /** `realPath` is where it leads; `kind` is set when that is not a regular file. */
  | { reason: 'outside-roots'; realPath: string; kind?: string; swapped: boolean }
  | { reason: 'not-regular'; realPath: string; kind: string }
  | { reason: 'pseudo-file-system'; realPath: string; fileSystem: string }
  /** The path led to another file while it was being opened. */
  | { reason: 'changed' }
  /** Not the file the caller expected (`expect`): replaced since it was identified. */
  | { reason: 'different-file'; expected: FileIdentity; actual: FileIdentity }
  /** open/fstat failed (permission denied, ...). */
  | { reason: 'io-error'; error: unknown };

export class OpenRefused extends Error {
  constructor(readonly refusal: OpenRefusal) {
    super(`file not opened: ${refusal.reason}`);
  }
}

export interface OpenWithinRootsOptions {
  /** Directories the file must be inside (after resolving links); empty = anywhere. */
  roots?: readonly string[];
  /** Refuse any other file than this one (the identity an earlier open returned). */
  expect?: FileIdentity;
}

interface KindOf {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}

export function describeKind(s: KindOf): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Kernel pseudo file systems (linux/magic.h): their "regular files" are views of the kernel and of the
 * process itself (/proc/self/environ holds the worker's credentials; /proc/self/pagemap is endless), never
 * a disk image or user data.
 */
const PSEUDO_FILE_SYSTEMS = new Map<bigint, string>([
  [0x9fa0n, 'procfs'],
  [0x62656572n, 'sysfs'],
  [0x64626720n, 'debugfs'],
  [0x74726163n, 'tracefs'],
  [0x73636673n, 'securityfs'],
  [0x62656570n, 'configfs'],
  [0xde5e81e4n, 'efivarfs'],
  [0x27e0ebn, 'cgroupfs'],
  [0x63677270n, 'cgroup2fs'],
  [0xcafe4a11n, 'bpffs'],
]);
/** Where those are mounted by convention: the answer when statfs cannot tell. */
const PSEUDO_PREFIXES: ReadonlyArray<[string, string]> = [
  ['/proc/', 'procfs'],
  ['/sys/', 'sysfs'],
];

export function isInside(file: string, root: string): boolean {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

async function resolveRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const root of roots) {
    try {
      out.push(await realpath(root));
    } catch {
      // A root that does not exist contains nothing.
    }
  }
  return out;
}

/** Where a chain of symbolic links starting at `file` ends in nothing, or undefined if it does not. */
async function danglingTarget(file: string): Promise<string | undefined> {
  let current = file;
  for (let hop = 0; hop < 40; hop++) {
    let link;
    try {
      link = await lstat(current);
    } catch {
      return hop === 0 ? undefined : current;
    }
    if (!link.isSymbolicLink()) return undefined;
    current = path.resolve(path.dirname(current), await readlink(current));
  }
  return undefined;
}

/**
 * This kernel: its boot ID (shared by the containers on one host, as their device numbers are), else the
 * host name.
 */
let kernelId: Promise<string> | undefined;
function thisKernel(): Promise<string> {
  kernelId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (id) => id.trim() || hostname(),
    () => hostname()
  );
  return kernelId;
}

async function identityOf(s: BigIntStats): Promise<FileIdentity> {
  return { device: s.dev.toString(), inode: s.ino.toString(), host: await thisKernel() };
}

/**
 * The same file? Device and inode on the same host. On another host (pre-flight and upload on two workers
 * of one site queue, both mounting the same NFS export) the kernel numbers the device of a mount itself,
 * so only the inode (the NFS file ID, the same for every client) can be compared.
 */
export function sameFile(expected: FileIdentity, actual: FileIdentity): boolean {
  if (expected.inode !== actual.inode) return false;
  const sameHost = expected.host === undefined || actual.host === undefined || expected.host === actual.host;
  return !sameHost || expected.device === actual.device;
}

/**
 * The real path of the file `handle` holds. Linux: the kernel's own answer (/proc/self/fd/N), which no
 * rename can change after the open. Where /proc is not mounted: the path resolved again, accepted only if
 * it still leads to the same device and inode as the descriptor.
 */
async function descriptorPath(handle: FileHandle, opened: BigIntStats, real: string): Promise<string> {
  let fromKernel: string | undefined;
  try {
    fromKernel = await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    fromKernel = undefined;
  }
  if (fromKernel !== undefined) {
    // The file was deleted (or replaced by a rename) after the open: not the file the path names.
    if (fromKernel.endsWith(' (deleted)') || !path.isAbsolute(fromKernel)) throw new OpenRefused({ reason: 'changed' });
    return fromKernel;
  }
  const again = await realpath(real).catch(() => undefined);
  const there = again === undefined ? undefined : await stat(again, { bigint: true }).catch(() => undefined);
  if (there === undefined || there.dev !== opened.dev || there.ino !== opened.ino) {
    throw new OpenRefused({ reason: 'changed' });
  }
  return again!;
}

async function pseudoFileSystem(handle: FileHandle, realPath: string): Promise<string | undefined> {
  // statfs follows /proc/self/fd/N to the open file itself: the file system the descriptor is on.
  const fs = await statfs(`/proc/self/fd/${handle.fd}`, { bigint: true }).catch(() => undefined);
  if (fs !== undefined) {
    const named = PSEUDO_FILE_SYSTEMS.get(fs.type);
    if (named !== undefined) return named;
  }
  return PSEUDO_PREFIXES.find(([prefix]) => realPath.startsWith(prefix))?.[1];
}

/**
 * Opens `file` read-only after every check (see the file comment); the caller closes the handle. Throws
 * OpenRefused, never anything else.
 */
export async function openWithinRoots(file: string, opts: OpenWithinRootsOptions = {}): Promise<OpenedFile> {
  if (!path.isAbsolute(file)) throw new OpenRefused({ reason: 'not-absolute' });
  const roots = opts.roots && opts.roots.length > 0 ? await resolveRoots(opts.roots) : undefined;

  // Before opening: for the messages (what the path leads to), and so that a device outside the roots is
  // not even opened. Not a guarantee: the path can change before the open, which is checked below.
  let real: string;
  try {
    real = await realpath(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const dangling = code === 'ENOENT' ? await danglingTarget(file).catch(() => undefined) : undefined;
    throw new OpenRefused({ reason: 'unresolvable', error, loop: code === 'ELOOP', danglingTarget: dangling });
  }
  if (roots && !roots.some((root) => isInside(real, root))) {
    const kind = await stat(real).then(
      (s) => (s.isFile() ? undefined : describeKind(s)),
      () => undefined
    );
    throw new OpenRefused({ reason: 'outside-roots', realPath: real, kind, swapped: false });
  }
  let before: BigIntStats;
  try {
    before = await stat(real, { bigint: true });
  } catch (error) {
    throw new OpenRefused({ reason: 'io-error', error });
  }
  if (!before.isFile()) throw new OpenRefused({ reason: 'not-regular', realPath: real, kind: describeKind(before) });

  // The real path has no link in it, so the last component must not be one now either (O_NOFOLLOW); a FIFO
  // or device swapped in opens without blocking (O_NONBLOCK) and is refused by fstat below.
  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    throw new OpenRefused(code === 'ELOOP' ? { reason: 'changed' } : { reason: 'io-error', error });
  }
  try {
    let opened: BigIntStats;
    try {
      opened = await handle.stat({ bigint: true });
    } catch (error) {
      throw new OpenRefused({ reason: 'io-error', error });
    }
    if (!opened.isFile()) throw new OpenRefused({ reason: 'not-regular', realPath: real, kind: describeKind(opened) });
    // The checks that hold: on what the descriptor is, whatever the path does meanwhile.
    const openedPath = await descriptorPath(handle, opened, real);
    if (roots && !roots.some((root) => isInside(openedPath, root))) {
      throw new OpenRefused({ reason: 'outside-roots', realPath: openedPath, swapped: true });
    }
    const pseudo = await pseudoFileSystem(handle, openedPath);
    if (pseudo !== undefined)
      throw new OpenRefused({ reason: 'pseudo-file-system', realPath: openedPath, fileSystem: pseudo });
    const identity = await identityOf(opened);
    if (opts.expect && !sameFile(opts.expect, identity)) {
      throw new OpenRefused({ reason: 'different-file', expected: opts.expect, actual: identity });
    }
    // The path was switched to another file inside the roots between the stat and the open.
    if (opened.dev !== before.dev || opened.ino !== before.ino) throw new OpenRefused({ reason: 'changed' });
    return { handle, realPath: openedPath, size: Number(opened.size), identity };
  } catch (err) {
    await handle.close();
    throw err instanceof OpenRefused ? err : new OpenRefused({ reason: 'io-error', error: err });
  }
}

/**
 * Reads at most `limit` bytes from the start, whatever the file claims its size is: a /proc file says 0
 * and may be endless, and a file can grow while it is read.
 */
export async function readAtMost(handle: FileHandle, limit: number): Promise<Buffer> {
  const buffer = Buffer.alloc(limit);
  let filled = 0;
  while (filled < limit) {
    const { bytesRead } = await handle.read(buffer, filled, limit - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
