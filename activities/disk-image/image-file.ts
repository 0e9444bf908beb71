/**
 * Opening a disk image safely: an absolute path to a regular, readable file, inside the configured image
 * roots after resolving symlinks. Never blocks on a FIFO or device (checked before opening, opened
 * non-blocking, re-checked on the open handle).
 */
import { ApplicationFailure } from '@temporalio/common';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, open, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FailureType } from '../../common/failures';
import { classifyFileError } from '../file-errors';

export interface OpenImage {
  handle: FileHandle;
  /** The file's real path (symlinks resolved). */
  realPath: string;
  size: number;
}

function describeKind(s: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

async function resolveRoots(roots: string[]): Promise<string[]> {
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
 * Why `realpath` failed, in words that say what to fix: a link that loops or points at nothing is a
 * different mistake from a wrong path.
 */
async function unresolvable(err: unknown, file: string): Promise<ApplicationFailure> {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ELOOP') {
    return ApplicationFailure.nonRetryable(
      `Disk image ${file} is a symbolic link that loops back on itself (or a chain of more than 40 links), so it leads to no file. Fix the link, or point the inventory at the image file itself.`,
      FailureType.ImageUnreadable
    );
  }
  if (code === 'ENOENT') {
    const target = await danglingTarget(file).catch(() => undefined);
    if (target !== undefined) {
      return ApplicationFailure.nonRetryable(
        `Disk image ${file} is a symbolic link to ${target}, which does not exist (a dangling link). Fix the link or put the image back, or point the inventory at the image file itself.`,
        FailureType.ImageNotFound
      );
    }
  }
  return classifyFileError(err, file);
}

/** " (it resolves to X, a device)": what a link leads to, for messages about the path the operator wrote. */
async function resolvesTo(file: string, real: string): Promise<string> {
  const kind = await stat(real).then(
    (s) => (s.isFile() ? '' : `, ${describeKind(s)}`),
    () => ''
  );
  if (real === path.resolve(file)) return kind ? ` (${kind.slice(2)})` : '';
  return ` (it resolves to ${real}${kind})`;
}

function isInside(file: string, root: string): boolean {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Opens `file` read-only after every check; the caller closes the handle. */
export async function openImage(file: string, imageRoots: readonly string[] = []): Promise<OpenImage> {
  if (!path.isAbsolute(file)) {
    throw ApplicationFailure.nonRetryable(
      `Disk image path "${file}" is not absolute. Use the absolute path of the image in the inventory.`,
      FailureType.ImageNotFound
    );
  }
  let real: string;
  try {
    real = await realpath(file);
  } catch (err) {
    throw await unresolvable(err, file);
  }
  if (imageRoots.length > 0) {
    const roots = await resolveRoots([...imageRoots]);
    if (!roots.some((root) => isInside(real, root))) {
      const via = await resolvesTo(file, real);
      throw ApplicationFailure.nonRetryable(
        `Disk image ${file}${via} is outside the allowed image roots (${imageRoots.join(', ')}). Move the image under one of them, or add its folder to VMCONVOY_IMAGE_ROOTS.`,
        FailureType.ImageOutsideRoots
      );
    }
  }
  let before;
  try {
    before = await stat(real);
  } catch (err) {
    throw classifyFileError(err, file);
  }
  if (!before.isFile()) {
    const via = real === path.resolve(file) ? '' : ` (it resolves to ${real})`;
    throw ApplicationFailure.nonRetryable(
      `Disk image ${file}${via} is ${describeKind(before)}, not a regular file. Point the inventory at the image file itself.`,
      FailureType.ImageUnreadable
    );
  }
  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw classifyFileError(err, file);
  }
  try {
    const after = await handle.stat();
    if (!after.isFile() || after.ino !== before.ino || after.dev !== before.dev) {
      throw ApplicationFailure.nonRetryable(
        `Disk image ${file} changed while it was being opened. Make sure nothing rewrites it during the migration.`,
        FailureType.ImageUnreadable
      );
    }
    return { handle, realPath: real, size: after.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Reads exactly `length` bytes at `position` (fewer only at EOF). */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}
