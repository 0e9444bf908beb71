/**
 * The small JSON objects vmconvoy keeps beside a VM's parts (the import marker, the record of what an
 * import created): read whole, written whole, classified like every other S3 call.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { awsCall } from './aws-call';
import { isNotFound } from './aws-error-codes';

export interface ObjectStore {
  s3: S3Client;
  bucket: string;
}

/** The object's text; undefined when there is no such object. */
export function readSmallObject(store: ObjectStore, key: string): Promise<string | undefined> {
  return awsCall(
    { operation: `reading ${key}`, bucket: store.bucket, service: 'S3' },
    async (abortSignal): Promise<string | undefined> => {
      const out = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }), { abortSignal });
      return (await out.Body?.transformToString()) ?? '';
    },
    (err) => (isNotFound(err) ? { value: undefined } : undefined)
  );
}

export async function writeJsonObject(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await awsCall({ operation: `writing ${key}`, bucket: store.bucket, service: 'S3' }, (abortSignal) =>
    store.s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Body: JSON.stringify(value),
        ContentType: 'application/json',
      }),
      { abortSignal }
    )
  );
}
