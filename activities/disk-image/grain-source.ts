/**
 * The grains of a disk that hold data, deflated, in order: read front to back in chunks, each chunk
 * deflated on a pool thread, a bounded number of chunks in flight (memory: window × chunk, a few MiB),
 * results taken in the order read. What feeds StreamVmdkWriter.
 */
import type { FileHandle } from 'node:fs/promises';
import { GRAIN_BYTES, grainCount } from './stream-vmdk';
import type { CompressedGrain } from './stream-vmdk';
import type { DeflatedChunk } from './deflate-pool';
import type { DataRange } from './data-map';
import { CHUNK_SLACK_PER_GRAIN, deflateChunkOffThread, deflateThreads } from './deflate-pool';

/**
 * Grains per chunk: 1 MiB reads, few enough messages to the threads. The chunks in flight (two per thread)
 * and each thread's garbage between collections grow with it; 2 MiB chunks held 4 MiB more in flight and
 * were no faster (producer 167 against 158–173 MB/s per 2 cores, bench `wire`).
 */
const CHUNK_GRAINS = 16;

export interface GrainSourceOptions {
  handle: FileHandle;
  /** Where the disk's first byte is in the file. */
  offset: number;
  /** The disk's length (a fixed VHD's data without its footer). */
  virtualBytes: number;
  /** First grain to deliver. */
  fromGrain: number;
  /** Where the disk may hold data (data-map.ts), sorted; undefined = anywhere. Grains outside are not read. */
  dataRanges?: readonly DataRange[];
  /** Called when the file ends early (it shrank under us); must throw. */
  onShortRead(): never;
}

async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  while (filled < into.length) {
    const { bytesRead } = await handle.read(into, filled, into.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

export async function* grainsWithData(o: GrainSourceOptions): AsyncGenerator<CompressedGrain> {
  const grains = grainCount(o.virtualBytes);
  const window = deflateThreads() * 2;
  const inFlight: { first: number; result: Promise<DeflatedChunk> }[] = [];
  const spare: ArrayBuffer[] = [];
  let next = o.fromGrain;
  let range = 0;
  /** The first grain at or after `g` that may hold data (grains in holes are zeros: skipped unread). */
  const dataFrom = (g: number): number => {
    const ranges = o.dataRanges;
    if (!ranges) return g;
    while (range < ranges.length && ranges[range]!.end <= g * GRAIN_BYTES) range++;
    if (range === ranges.length) return grains;
    return Math.max(g, Math.floor(ranges[range]!.start / GRAIN_BYTES));
  };
  next = dataFrom(next);
  const launch = async (): Promise<void> => {
    const first = next;
    const start = first * GRAIN_BYTES;
    const length = Math.min(CHUNK_GRAINS * GRAIN_BYTES, o.virtualBytes - start);
    const memory = spare.pop() ?? new ArrayBuffer(CHUNK_GRAINS * (GRAIN_BYTES + CHUNK_SLACK_PER_GRAIN));
    const read = await readFully(o.handle, new Uint8Array(memory, 0, length), o.offset + start);
    if (read !== length) o.onShortRead();
    next = dataFrom(Math.min(grains, first + CHUNK_GRAINS));
    inFlight.push({ first, result: deflateChunkOffThread(memory, length, GRAIN_BYTES) });
  };
  try {
    while (next < grains || inFlight.length > 0) {
      while (next < grains && inFlight.length < window) await launch();
      const { first, result } = inFlight.shift()!;
      const chunk = await result;
      for (const g of chunk.grains) yield { grain: first + g.grain, data: g.data };
      // Only now: the grains yielded were views of this memory.
      spare.push(chunk.memory);
    }
  } finally {
    // Abandoned early (a failed part): let the chunks in flight finish without anyone waiting on them.
    for (const f of inFlight) f.result.catch(() => undefined);
  }
}
