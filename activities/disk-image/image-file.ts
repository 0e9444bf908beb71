/**
 * Opening a disk image safely (open-within-roots.ts: inside the image roots, checked on the open
 * descriptor, regular file, never blocking), with messages about images: what is wrong with the path the
 * inventory gives and what fixes it.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { FileHandle } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FailureType } from '../../common/failures';
import { classifyFileError } from '../file-errors';
import type { FileIdentity, OpenRefusal } from '../open-within-roots';
import { OpenRefused, describeKind, openWithinRoots } from '../open-within-roots';

export type { FileIdentity } from '../open-within-roots';

export interface OpenImage {
  handle: FileHandle;
  /** The file's real path (symlinks resolved). */
  realPath: string;
  size: number;
  /** Device and inode: which file this is (pre-flight hands it to the upload). */
  identity: FileIdentity;
}

/** " (it resolves to X, a device)": what a link leads to, for messages about the path the operator wrote. */
async function resolvesTo(file: string, real: string, knownKind?: string): Promise<string> {
  const kind =
    knownKind ??
    (await stat(real).then(
      (s) => (s.isFile() ? undefined : describeKind(s)),
      () => undefined
    ));
  if (real === path.resolve(file)) return kind ? ` (${kind})` : '';
  return ` (it resolves to ${real}${kind ? `, ${kind}` : ''})`;
}

/** The failure for a refused image, worded for the operator. */
export async function imageFailure(
  refusal: OpenRefusal,
  file: string,
  imageRoots: readonly string[]
): Promise<ApplicationFailure> {
  switch (refusal.reason) {
    case 'not-absolute':
      return ApplicationFailure.nonRetryable(
        `Disk image path "${file}" is not absolute. Use the absolute path of the image in the inventory.`,
        FailureType.ImageNotFound
      );
    case 'unresolvable':
      if (refusal.loop) {
        return ApplicationFailure.nonRetryable(
          `Disk image ${file} is a symbolic link that loops back on itself (or a chain of more than 40 links), so it leads to no file. Fix the link, or point the inventory at the image file itself.`,
          FailureType.ImageUnreadable
        );
      }
      if (refusal.danglingTarget !== undefined) {
        return ApplicationFailure.nonRetryable(
          `Disk image ${file} is a symbolic link to ${refusal.danglingTarget}, which does not exist (a dangling link). Fix the link or put the image back, or point the inventory at the image file itself.`,
          FailureType.ImageNotFound
        );
      }
      return classifyFileError(refusal.error, file);
    case 'outside-roots': {
      const via = refusal.swapped
        ? ` (the file opened was ${refusal.realPath}: a folder on its path was replaced while it was opened)`
        : await resolvesTo(file, refusal.realPath, refusal.kind);
      return ApplicationFailure.nonRetryable(
        `Disk image ${file}${via} is outside the allowed image roots (${imageRoots.join(', ')}). Move the image under one of them, or add its folder to VMCONVOY_IMAGE_ROOTS.`,
        FailureType.ImageOutsideRoots
      );
    }
    case 'not-regular': {
      const via = refusal.realPath === path.resolve(file) ? '' : ` (it resolves to ${refusal.realPath})`;
      return ApplicationFailure.nonRetryable(
        `Disk image ${file}${via} is ${refusal.kind}, not a regular file. Point the inventory at the image file itself.`,
        FailureType.ImageUnreadable
      );
    }
    case 'pseudo-file-system':
      return ApplicationFailure.nonRetryable(
        `Disk image ${file} (${refusal.realPath}) is a file of the kernel's ${refusal.fileSystem}, not a disk image. Point the inventory at the image file itself.`,
        FailureType.ImageUnreadable
      );
    case 'changed':
      return ApplicationFailure.nonRetryable(
        `Disk image ${file} changed while it was being opened. Make sure nothing rewrites it (or the folders above it) during the migration.`,
        FailureType.ImageUnreadable
      );
    case 'different-file':
      return ApplicationFailure.nonRetryable(
        `Disk image ${file} is no longer the file pre-flight checked (device ${refusal.expected.device} inode ${refusal.expected.inode}, now device ${refusal.actual.device} inode ${refusal.actual.inode}${refusal.expected.host !== undefined && refusal.expected.host !== refusal.actual.host ? ', on another host' : ''}): it was replaced or moved, or this host holds another file under that path. Leave the image in place until its upload is done, then run the VM again.`,
        FailureType.ImageChanged
      );
    case 'io-error':
      return classifyFileError(refusal.error, file);
  }
}

/**
 * Opens `file` read-only after every check; the caller closes the handle. `expect`: refuse any other file
 * than the one pre-flight opened (ImageChanged).
 */
export async function openImage(
  file: string,
  imageRoots: readonly string[] = [],
  expect?: FileIdentity
): Promise<OpenImage> {
  try {
    return await openWithinRoots(file, { roots: imageRoots, expect });
  } catch (err) {
    if (err instanceof OpenRefused) throw await imageFailure(err.refusal, file, imageRoots);
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
