/**
 * The upload of a RAW disk (or a fixed VHD's data) as a stream-optimized VMDK made while it is sent
 * (issue 19, "send only what the disk holds"): all-zero grains are skipped, the rest deflated on pool
 * threads (disk-image/grain-source.ts), the stream (disk-image/stream-vmdk.ts) cut into the manifest's
 * parts of `partSizeBytes` (the last shorter) and PUT as they fill, `concurrency` at a time. Memory:
 * `concurrency` parts (filling or in flight) and a few MiB of grains in flight, whatever the disk's size.
 *
 * Resumable: the stream is a pure function of the disk, so a part boundary is a point in it that can be
 * reached again. For the first part not yet known to be in S3 the heartbeat carries where the writer stood
 * at the start of the record holding that part's first byte (source grain, output offset, the open grain
 * table and the grain directory so far), plus the ETags of the parts before it. A retry checks those parts
 * in S3 (one listing), restarts the writer there, drops the record's bytes before the boundary and goes
 * on; later parts an earlier attempt sent are recognised by size and MD5 (ETag) and not sent again. The
 * output of a resumed upload is byte for byte the output of an uninterrupted one.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { crc32 } from 'node:zlib';
import type { UploadInput, UploadResult } from '../common/contracts/activity-io';
import { FailureType } from '../common/failures';
import { partKey } from '../common/object-keys';
import {
  activityLog,
  attempt,
  cancellationSignal,
  heartbeat,
  previousHeartbeatDetails,
  throwIfCancelled,
} from './activity-context';
import { awsCall } from './aws-call';
import { checksumOffThread } from './checksum-pool';
import type { OpenImage } from './disk-image/image-file';
import { grainsWithData } from './disk-image/grain-source';
import { rawDataRanges } from './disk-image/data-map';
import type { StreamCheckpoint } from './disk-image/stream-vmdk';
import { StreamVmdkWriter } from './disk-image/stream-vmdk';
import { recordBytesUploaded, recordPartRetried } from './metrics';
import type { UploadDeps } from './upload';
import { listExisting } from './upload';

/** ETags of the parts just before the resume point that the heartbeat keeps (checked on resume). */
const ETAGS_KEPT = 64;

/** Heartbeat details of a stream-optimized upload (numbers, strings; a few KiB at most for a 2 TiB disk). */
export interface StreamUploadProgress {
  stream: {
    /** What the stream is of: a checkpoint of another layout is ignored. */
    virtualBytes: number;
    partSizeBytes: number;
    /** Every part below this is in S3. */
    doneBelow: number;
    /** The writer's state at the start of the record holding part `doneBelow`'s first byte. */
    checkpoint?: StreamCheckpoint;
    /** ETags of parts [doneBelow - etags.length, doneBelow). */
    etags: string[];
    bytesSent: number;
    /** Set once every part is in S3: the stream's length. */
    imageBytes?: number;
  };
}

type Progress = StreamUploadProgress['stream'];

/** The previous attempt's progress, if it is for this same stream; anything odd means starting over. */
export function parseStreamProgress(
  details: unknown,
  virtualBytes: number,
  partSizeBytes: number
): Progress | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  const s = (details as Partial<StreamUploadProgress>).stream;
  if (typeof s !== 'object' || s === null) return undefined;
  if (s.virtualBytes !== virtualBytes || s.partSizeBytes !== partSizeBytes) return undefined;
  if (!Number.isSafeInteger(s.doneBelow) || s.doneBelow < 0 || !Array.isArray(s.etags)) return undefined;
  if (!s.etags.every((e) => typeof e === 'string') || s.etags.length > s.doneBelow) return undefined;
  if (s.doneBelow > 0 && s.checkpoint === undefined && s.imageBytes === undefined) return undefined;
  return {
    ...s,
    bytesSent: Number.isSafeInteger(s.bytesSent) && s.bytesSent >= 0 ? s.bytesSent : 0,
  };
}

/** The descriptor's CID: fixed per VM (a resumed stream must be the same bytes), different between VMs. */
function cidOf(input: UploadInput): number {
  return crc32(`${input.namespace ?? ''}/${input.batch}/${input.vm}`);
}

/** x-amz-checksum-crc32: the CRC32's 4 bytes, big-endian, in base64. */
function crc32Header(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString('base64');
}

export async function uploadStreamOptimized(
  deps: UploadDeps,
  input: UploadInput,
  image: OpenImage,
  virtualBytes: number
): Promise<UploadResult> {
  const partSize = input.partSizeBytes;
  const layout = { virtualBytes, cid: cidOf(input) };
  const existing = await listExisting(deps, input);
  const keyOf = (index: number): string => partKey(deps.keyPrefix, input, index);
  const previous = parseStreamProgress(previousHeartbeatDetails(), virtualBytes, partSize);
  const inS3 = (index: number, length: number, etag?: string): boolean => {
    const there = existing.get(keyOf(index));
    return there !== undefined && there.size === length && (etag === undefined || there.etag === etag);
  };
  // Parts the heartbeat says are done must still be in S3 (ETags checked where kept); else start over.
  const trusted = (p: Progress, below: number): boolean => {
    for (let i = 0; i < below; i++) {
      const e = i - (p.doneBelow - p.etags.length);
      const length = p.imageBytes !== undefined ? Math.min(partSize, p.imageBytes - i * partSize) : partSize;
      if (!inS3(i, length, e >= 0 ? p.etags[e] : undefined)) return false;
    }
    return true;
  };
  let bytesSent = previous?.bytesSent ?? 0;
  if (previous?.imageBytes !== undefined && trusted(previous, previous.doneBelow)) {
    activityLog.info('upload already complete', { batch: input.batch, vm: input.vm, parts: previous.doneBelow });
    return { parts: previous.doneBelow, bytesSent, bytesReused: 0, imageBytes: previous.imageBytes, format: 'VMDK' };
  }
  const resume = previous?.checkpoint && trusted(previous, previous.doneBelow) ? previous : undefined;
  const startPart = resume?.doneBelow ?? 0;
  const writer = new StreamVmdkWriter(layout, resume?.checkpoint);

  const etags = new Map<number, string>();
  if (resume) resume.etags.forEach((e, i) => etags.set(resume.doneBelow - resume.etags.length + i, e));
  const done = new Set<number>();
  for (let i = 0; i < startPart; i++) done.add(i);
  /** Checkpoint of each part begun and not yet below `doneBelow`. */
  const checkpoints = new Map<number, StreamCheckpoint>();
  if (resume?.checkpoint) checkpoints.set(startPart, resume.checkpoint);
  let doneBelow = startPart;
  let resumeAt = startPart;
  let imageBytes: number | undefined;
  let bytesReused = 0;

  const progress = (): StreamUploadProgress => {
    const complete = imageBytes !== undefined && done.size === Math.ceil(imageBytes / partSize);
    const below = complete ? doneBelow : resumeAt;
    // The ETags of the parts just below the resume point (a contiguous run; every done part has one).
    let kept: string[] = [];
    for (let i = Math.max(0, below - ETAGS_KEPT); i < below; i++) {
      const e = etags.get(i);
      kept = e === undefined ? [] : [...kept, e];
    }
    return {
      stream: {
        virtualBytes,
        partSizeBytes: partSize,
        doneBelow: below,
        checkpoint: complete ? undefined : checkpoints.get(below),
        etags: kept,
        bytesSent,
        imageBytes: complete ? imageBytes : undefined,
      },
    };
  };
  const beat = (): void => heartbeat(progress());
  const ticker = setInterval(beat, deps.heartbeatIntervalMs ?? 5_000);
  const abortSignal = cancellationSignal();
  activityLog.info('stream-optimized upload started', {
    batch: input.batch,
    vm: input.vm,
    resumedAtPart: startPart,
    concurrency: input.concurrency,
  });

  /**
   * Part memory, the upload's largest: `concurrency` buffers in all, each held from the first byte put in
   * it until its PUT ends, so the PUTs in flight and the part filling share them. Behind a link slower than
   * the producer (the case this upload is for) a part is filled in a fraction of a PUT's time, so the link
   * stays busy; one buffer more let `concurrency` + 1 PUTs go out at once and cost a part more of RSS.
   */
  const free: ArrayBuffer[] = [];
  const buffers = Math.max(1, input.concurrency);
  let allocated = 0;
  const waiters: (() => void)[] = [];
  const takeBuffer = async (): Promise<ArrayBuffer> => {
    while (free.length === 0 && allocated >= buffers) await new Promise<void>((r) => waiters.push(r));
    if (free.length > 0) return free.pop()!;
    allocated++;
    return new ArrayBuffer(partSize);
  };
  const giveBack = (memory: ArrayBuffer): void => {
    free.push(memory);
    waiters.shift()?.();
  };

  let failure: Error | undefined;
  const inFlight = new Set<Promise<void>>();
  const sendPart = async (index: number, memory: ArrayBuffer, length: number, crc: number): Promise<void> => {
    const key = keyOf(index);
    const there = existing.get(key);
    try {
      if (there && there.size === length) {
        const md5 = await checksumOffThread('md5', memory, length);
        memory = md5.memory;
        if (md5.digest.toString('hex') === there.etag) {
          bytesReused += length;
          etags.set(index, there.etag);
          return;
        }
      }
      const body = Buffer.from(memory, 0, length);
      const out = await awsCall({ operation: `upload of part ${index} (${key})`, bucket: deps.bucket }, () =>
        deps.s3.send(
          new PutObjectCommand({
            Bucket: deps.bucket,
            Key: key,
            Body: body,
            ContentLength: length,
            ChecksumCRC32: crc32Header(crc),
          }),
          { abortSignal }
        )
      );
      etags.set(index, (out.ETag ?? '').replace(/"/g, '').toLowerCase());
      bytesSent += length;
      deps.onBytesUploaded?.(length);
      recordBytesUploaded(length);
      if (there !== undefined || attempt() > 1) recordPartRetried();
    } finally {
      giveBack(memory);
    }
  };
  const dispatch = (index: number, memory: ArrayBuffer, length: number, crc: number): void => {
    const p = sendPart(index, memory, length, crc).then(
      () => {
        done.add(index);
        while (done.has(doneBelow)) doneBelow++;
        // The resume point: the furthest part boundary at or below doneBelow whose checkpoint is known.
        for (let j = doneBelow; j >= resumeAt; j--) {
          if (checkpoints.has(j)) {
            resumeAt = j;
            break;
          }
        }
        for (const j of checkpoints.keys()) if (j < resumeAt) checkpoints.delete(j);
        beat();
      },
      (err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      }
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  try {
    const offset = input.imageOffset ?? 0;
    const dataRanges =
      deps.qemuImg === false
        ? undefined
        : await rawDataRanges(deps.qemuImg ?? 'qemu-img', image.realPath, offset, virtualBytes);
    const source = grainsWithData({
      handle: image.handle,
      offset,
      dataRanges,
      virtualBytes,
      fromGrain: writer.nextGrain,
      onShortRead: () => {
        throw ApplicationFailure.nonRetryable(
          `Disk image ${input.image} became shorter during the upload. Wait until nothing writes it, then run the VM again.`,
          FailureType.ImageChanged
        );
      },
    });
    let part = startPart;
    let memory = await takeBuffer();
    let filled = 0;
    let crc = 0;
    const boundary = startPart * partSize;
    for await (const record of writer.records(source)) {
      if (failure) break;
      throwIfCancelled();
      let bytes = record.bytes;
      if (record.start < boundary) bytes = bytes.subarray(Math.min(bytes.length, boundary - record.start));
      while (bytes.length > 0) {
        // This record holds the part's first byte: the writer's state now is where a retry resumes it.
        if (filled === 0 && !checkpoints.has(part)) checkpoints.set(part, writer.checkpoint());
        const n = Math.min(bytes.length, partSize - filled);
        const piece = bytes.subarray(0, n);
        new Uint8Array(memory, filled, n).set(piece);
        // The part's CRC32 grows with it, a record at a time (a grain's is 64 KiB at most): no checksum
        // thread (one more V8 isolate, ~10 MiB of RSS each) and no second pass over the part.
        crc = crc32(piece, crc);
        filled += n;
        bytes = bytes.subarray(n);
        if (filled === partSize) {
          dispatch(part++, memory, filled, crc);
          memory = await takeBuffer();
          filled = 0;
          crc = 0;
          if (failure) break;
        }
      }
    }
    if (!failure) {
      imageBytes = writer.bytesWritten;
      if (filled > 0) dispatch(part++, memory, filled, crc);
    }
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  } finally {
    clearInterval(ticker);
  }
  beat(); // what finished, for the next attempt (or the record that all is done)
  if (failure) throw failure;
  const parts = Math.ceil(imageBytes! / partSize);
  activityLog.info('stream-optimized upload finished', {
    batch: input.batch,
    vm: input.vm,
    parts,
    imageBytes,
    virtualBytes,
    bytesSent,
    bytesReused,
  });
  return { parts, bytesSent, bytesReused, imageBytes, format: 'VMDK' };
}
