/**
 * The user data of an imported instance: read from the file the inventory names, inside the activity that
 * sends it, never carried in a workflow history.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import { MAX_USER_DATA_BYTES } from '../common/contracts/limits';
import { FailureType } from '../common/failures';

/** The file's bytes, base64 as ImportInstance takes them. */
export async function readUserData(file: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw ApplicationFailure.nonRetryable(
      `User data file ${file} cannot be read (${code}). Fix userDataFile in the inventory.`,
      FailureType.UserDataInvalid
    );
  }
  if (data.length > MAX_USER_DATA_BYTES) {
    throw ApplicationFailure.nonRetryable(
      `User data file ${file} is ${data.length} bytes; EC2 accepts at most ${MAX_USER_DATA_BYTES}. Shorten it (or compress it with gzip).`,
      FailureType.UserDataInvalid
    );
  }
  return data.toString('base64');
}
