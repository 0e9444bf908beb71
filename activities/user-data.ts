/**
 * The user data of an imported instance: read from the file the inventory names, inside the activity that
 * sends it, never carried in a workflow history.
 *
 * The file is opened exactly as a disk image is (open-within-roots.ts), whatever the CLI checked when the
 * inventory was read (on another host, maybe hours earlier): inside the worker's image roots, a regular
 * file checked on the open descriptor, never a FIFO or device (no blocking open, no endless read), never a
 * kernel file (/proc/self/environ would put the worker's credentials in the instance's user data). At most
 * MAX_USER_DATA_BYTES + 1 bytes are read, whatever size the file claims (a /proc file says 0).
 */
import { ApplicationFailure } from '@temporalio/common';
import path from 'node:path';
import { MAX_USER_DATA_BYTES } from '../common/contracts/limits';
import { FailureType } from '../common/failures';
import { asAwsLike } from './aws-error-codes';
import type { OpenRefusal } from './open-within-roots';
import { OpenRefused, openWithinRoots, readAtMost } from './open-within-roots';

const FIX = 'Fix user_data_file in the inventory';

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, FailureType.UserDataInvalid);
}

/** The failure for a refused user-data file: what is wrong and what to fix. */
export function userDataFailure(refusal: OpenRefusal, file: string, roots: readonly string[]): ApplicationFailure {
  const at = `User data file ${file}`;
  switch (refusal.reason) {
    case 'not-absolute':
      return invalid(`User data file path "${file}" is not absolute. ${FIX}: use the file's absolute path.`);
    case 'unresolvable': {
      if (refusal.loop) return invalid(`${at} is a symbolic link that loops back on itself. ${FIX}.`);
      if (refusal.danglingTarget !== undefined) {
        return invalid(`${at} is a symbolic link to ${refusal.danglingTarget}, which does not exist. ${FIX}.`);
      }
      const code = asAwsLike(refusal.error).code ?? 'error';
      const where =
        code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist on this host' : `cannot be read (${code})`;
      return invalid(`${at} ${where}. ${FIX}, or put the file there.`);
    }
    case 'outside-roots': {
      const via =
        refusal.realPath === path.resolve(file)
          ? ''
          : refusal.swapped
            ? ` (the file opened was ${refusal.realPath}: a folder on its path was replaced while it was opened)`
            : ` (it resolves to ${refusal.realPath})`;
      return invalid(
        `${at}${via} is outside the allowed image roots (${roots.join(', ')}): the worker reads user data only there. Move the file under one of them, or add its folder to VMCONVOY_IMAGE_ROOTS.`
      );
    }
    case 'not-regular': {
      const via = refusal.realPath === path.resolve(file) ? '' : ` (it resolves to ${refusal.realPath})`;
      return invalid(`${at}${via} is ${refusal.kind}, not a regular file. ${FIX}: name a regular file.`);
    }
    case 'pseudo-file-system':
      return invalid(
        `${at} (${refusal.realPath}) is a file of the kernel's ${refusal.fileSystem}, not user data; it is never sent. ${FIX}: name the script or cloud-config file meant for the instance.`
      );
    case 'changed':
    case 'different-file':
      return invalid(`${at} changed while it was being opened. Make sure nothing rewrites it during the migration.`);
    case 'io-error': {
      const code = asAwsLike(refusal.error).code ?? 'error';
      const reason =
        code === 'EACCES' || code === 'EPERM' ? 'permission denied: give the worker user read access' : code;
      return invalid(`${at} cannot be read (${reason}). ${FIX}.`);
    }
  }
}

/**
 * The file's bytes, base64 as ImportInstance takes them. `roots`: the worker's image roots (empty = any
 * path, but never a kernel file).
 */
export async function readUserData(file: string, roots: readonly string[] = []): Promise<string> {
  let opened;
  try {
    opened = await openWithinRoots(file, { roots });
  } catch (err) {
    if (err instanceof OpenRefused) throw userDataFailure(err.refusal, file, roots);
    throw err;
  }
  let data: Buffer;
  try {
    // One byte more than allowed tells "too large" without reading the rest (which may never end).
    data = await readAtMost(opened.handle, MAX_USER_DATA_BYTES + 1);
  } catch (err) {
    throw invalid(`User data file ${file} cannot be read (${asAwsLike(err).code ?? 'error'}). ${FIX}.`);
  } finally {
    await opened.handle.close();
  }
  if (data.length > MAX_USER_DATA_BYTES) {
    throw invalid(
      `User data file ${file} is larger than ${MAX_USER_DATA_BYTES} bytes, the most EC2 accepts. Shorten it (or compress it with gzip).`
    );
  }
  return data.toString('base64');
}
