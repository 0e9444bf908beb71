/** A file-system error while reading a disk image becomes ImageNotFound / ImageUnreadable (both final). */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../common/failures';
import { asAwsLike } from './aws-error-codes';

export function classifyFileError(err: unknown, file: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const code = asAwsLike(err).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return ApplicationFailure.nonRetryable(
      `Disk image ${file} does not exist on this host. Fix the path in the inventory, or run the upload on the site task queue of the hosts that hold the images.`,
      FailureType.ImageNotFound
    );
  }
  const reason =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied: give the worker user read access'
      : code === 'ELOOP'
        ? 'too many symbolic links'
        : code === 'EISDIR'
          ? 'it is a directory'
          : `${code ?? 'error'}: ${asAwsLike(err).message ?? ''}`;
  return ApplicationFailure.nonRetryable(`Disk image ${file} cannot be read (${reason}).`, FailureType.ImageUnreadable);
}
