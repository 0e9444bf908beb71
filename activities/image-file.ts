/**
 * Opening a disk image safely: an absolute path to a regular, readable file, inside the configured image
 * roots after resolving symlinks. Never blocks on a FIFO or device (checked before opening, opened
 * non-blocking, re-checked on the open handle).
 */
import { ApplicationFailure } from '@temporalio/common';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { classifyFileError, FailureType } from './errors';

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
    throw classifyFileError(err, file);
  }
  if (imageRoots.length > 0) {
    const roots = await resolveRoots([...imageRoots]);
    if (!roots.some((root) => isInside(real, root))) {
      const via = real === path.resolve(file) ? '' : ` (it resolves to ${real})`;
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
    throw ApplicationFailure.nonRetryable(
      `Disk image ${file} is ${describeKind(before)}, not a regular file. Point the inventory at the image file itself.`,
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
