/**
 * Uploads a disk image to S3 as the separate part objects a VM Import manifest lists (not an S3 multipart
 * upload). Parts are read from disk into one buffer per lane, so memory is concurrency × part size whatever
 * the image size. Every PUT carries the part's CRC32 (S3 refuses damaged bytes), computed off the event
 * loop. Resumable twice over: parts heartbeated as done by an earlier attempt are skipped, and every other
 * part already in S3 with the right length and an ETag equal to its MD5 is reused (one listing of the VM's
 * folder per attempt tells which, instead of a HEAD per part; the MD5 is computed only for those parts).
 * A RAW disk or fixed VHD can instead be sent as a stream-optimized VMDK made on the fly (upload-stream.ts).
 */
import { recordBytesUploaded, recordPartRetried } from './metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { FileHandle } from 'node:fs/promises';
import type { UploadInput, UploadResult } from '../common/contracts/activity-io';
import {
  activityLog,
  attempt,
  cancellationSignal,
  heartbeat,
  previousHeartbeatDetails,
  throwIfCancelled,
} from './activity-context';
import { FailureType } from '../common/failures';
import { awsCall } from './aws-call';
import { openImage } from './disk-image/image-file';
import type { ChecksumAlgorithm } from './checksum-pool';
import { checksumOffThread } from './checksum-pool';
import type { PartRange } from '../common/object-keys';
import { partKey, partRanges, vmPrefix } from '../common/object-keys';
import { uploadStreamOptimized } from './upload-stream';

export interface UploadDeps {
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
  imageRoots?: readonly string[];
  /** Called with the byte count of every part sent (metrics). */
  onBytesUploaded?: (bytes: number) => void;
  /** How often to heartbeat while a part is in flight (well inside the 20 s heartbeat timeout). @default 5 s */
  heartbeatIntervalMs?: number;
  /** qemu-img, to find a RAW disk's holes for the stream-optimized upload (false: read them). @default 'qemu-img' */
  qemuImg?: string | false;
}

/**
 * Heartbeat details: numbers only. Parts below `doneBelow` are all done; `done` lists every done part
 * (kept short by `doneBelow`, since parts finish roughly in order).
 */
export interface UploadProgress {
  done: number[];
  doneBelow: number;
  bytesSent: number;
}

/** Reads the previous attempt's progress defensively (details come from an older worker, maybe). */
export function parseUploadProgress(details: unknown, partCount: number): { done: Set<number>; bytesSent: number } {
  const done = new Set<number>();
  if (typeof details !== 'object' || details === null) return { done, bytesSent: 0 };
  const d = details as Partial<Record<keyof UploadProgress, unknown>>;
  const valid = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < partCount;
  if (typeof d.doneBelow === 'number' && Number.isSafeInteger(d.doneBelow)) {
    for (let i = 0; i < Math.min(d.doneBelow, partCount); i++) done.add(i);
  }
  if (Array.isArray(d.done)) for (const n of d.done) if (valid(n)) done.add(n);
  const bytesSent =
    typeof d.bytesSent === 'number' && Number.isSafeInteger(d.bytesSent) && d.bytesSent >= 0 ? d.bytesSent : 0;
  return { done, bytesSent };
}

function progressOf(done: Set<number>, bytesSent: number): UploadProgress {
  let doneBelow = 0;
  while (done.has(doneBelow)) doneBelow++;
  return { done: [...done].filter((i) => i >= doneBelow).sort((a, b) => a - b), doneBelow, bytesSent };
}

/** What S3 already holds under the VM's folder: key → size and MD5 ETag (single-PUT objects). */
export async function listExisting(
  deps: UploadDeps,
  input: UploadInput
): Promise<Map<string, { size: number; etag: string }>> {
  const prefix = vmPrefix(deps.keyPrefix, input);
  const existing = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await awsCall(
      { operation: `listing ${prefix} (parts uploaded earlier)`, bucket: deps.bucket, service: 'S3' },
      (abortSignal) =>
        deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }), {
          abortSignal,
        })
    );
    for (const o of page.Contents ?? []) {
      if (o.Key) existing.set(o.Key, { size: o.Size ?? -1, etag: (o.ETag ?? '').replace(/"/g, '').toLowerCase() });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return existing;
}

export async function uploadImage(deps: UploadDeps, input: UploadInput): Promise<UploadResult> {
  // The file pre-flight read, or none (a different file is ImageChanged); histories from before
  // pre-flight returned it carry no identity, and the size check below is all there is then.
  const image = await openImage(input.image, deps.imageRoots ?? [], input.imageIdentity);
  try {
    // An OVA's disk is a range of the file: the file's whole length is what pre-flight measured then.
    const offset = input.imageOffset ?? 0;
    const measured = input.containerBytes ?? input.imageBytes;
    if (image.size !== measured || offset + input.imageBytes > image.size) {
      throw ApplicationFailure.nonRetryable(
        `Disk image ${input.image} is now ${image.size} bytes, but pre-flight measured ${measured}. Something is still writing it: wait until it is complete, then run the VM again.`,
        FailureType.ImageChanged
      );
    }
    // RAW or a fixed VHD's data, sent as the stream-optimized VMDK made from it (upload-stream.ts).
    if (input.streamOptimized) {
      return await uploadStreamOptimized(deps, input, image, input.streamOptimized.virtualBytes);
    }
    const parts = partRanges(input.imageBytes, input.partSizeBytes);
    const previous = parseUploadProgress(previousHeartbeatDetails(), parts.length);
    const done = previous.done;
    let bytesSent = previous.bytesSent;
    let bytesReused = 0;
    const beat = (): void => heartbeat(progressOf(done, bytesSent));
    const existing = await listExisting(deps, input);
    const ticker = setInterval(beat, deps.heartbeatIntervalMs ?? 5_000);
    activityLog.info('upload started', {
      batch: input.batch,
      vm: input.vm,
      parts: parts.length,
      alreadyDone: done.size,
      concurrency: input.concurrency,
    });

    const abortSignal = cancellationSignal();
    /** One lane's memory: it travels to an MD5 thread and back (transferred, not copied) with every part. */
    interface Lane {
      memory: ArrayBuffer;
    }
    /** Runs `algorithm` over the part in the lane's memory on a pool thread; the memory comes back. */
    const checksum = async (algorithm: ChecksumAlgorithm, lane: Lane, length: number): Promise<Buffer> => {
      const hashed = await checksumOffThread(algorithm, lane.memory, length);
      lane.memory = hashed.memory;
      return hashed.digest;
    };
    const uploadPart = async (part: PartRange, lane: Lane): Promise<void> => {
      const key = partKey(deps.keyPrefix, input, part.index);
      await readPartInto(image.handle, part, Buffer.from(lane.memory), input.image, offset);
      const op = `upload of part ${part.index} (${key})`;
      const there = existing.get(key);
      // Only a part already in S3 needs its MD5: a single-PUT object's ETag is the MD5 of its bytes.
      if (
        there &&
        there.size === part.length &&
        there.etag === (await checksum('md5', lane, part.length)).toString('hex')
      ) {
        bytesReused += part.length;
        return;
      }
      const crc = await checksum('crc32', lane, part.length);
      const data = Buffer.from(lane.memory, 0, part.length);
      // S3 holds something else under this key: a damaged or stale part.
      const replacing = there !== undefined;
      await awsCall({ operation: op, bucket: deps.bucket }, () =>
        deps.s3.send(
          new PutObjectCommand({
            Bucket: deps.bucket,
            Key: key,
            Body: data,
            ContentLength: part.length,
            // S3 refuses the part (BadDigest) if the bytes it received do not match.
            ChecksumCRC32: crc.toString('base64'),
          }),
          { abortSignal }
        )
      );
      bytesSent += part.length;
      deps.onBytesUploaded?.(part.length);
      recordBytesUploaded(part.length);
      if (replacing || attempt() > 1) recordPartRetried();
    };

    let next = 0;
    let failure: Error | undefined;
    const lane = async (): Promise<void> => {
      const memory: Lane = { memory: new ArrayBuffer(Math.min(input.partSizeBytes, input.imageBytes)) };
      while (failure === undefined) {
        const part = parts[next++];
        if (!part) return;
        if (done.has(part.index)) continue;
        try {
          throwIfCancelled();
          await uploadPart(part, memory);
          done.add(part.index);
          beat();
        } catch (err) {
          failure ??= err instanceof Error ? err : new Error(String(err));
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(input.concurrency, parts.length)) }, lane));
    } finally {
      clearInterval(ticker);
    }
    if (failure !== undefined) {
      beat(); // keep what finished for the next attempt
      throw failure;
    }
    activityLog.info('upload finished', {
      batch: input.batch,
      vm: input.vm,
      parts: parts.length,
      bytesSent,
      bytesReused,
    });
    return { parts: parts.length, bytesSent, bytesReused };
  } finally {
    await image.handle.close();
  }
}

/** Reads one part (at `offset` + its start) into the lane's buffer; a short read means the file shrank under us. */
async function readPartInto(
  handle: FileHandle,
  part: PartRange,
  buffer: Buffer,
  file: string,
  offset = 0
): Promise<Buffer> {
  let filled = 0;
  while (filled < part.length) {
    const { bytesRead } = await handle.read(buffer, filled, part.length - filled, offset + part.start + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled !== part.length) {
    throw ApplicationFailure.nonRetryable(
      `Disk image ${file} became shorter during the upload. Wait until nothing writes it, then run the VM again.`,
      FailureType.ImageChanged
    );
  }
  return buffer.subarray(0, part.length);
}
