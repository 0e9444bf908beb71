/**
 * Grains deflated off the event loop, on a bounded pool of threads shared by every upload of the worker.
 * A chunk of consecutive grains goes to a thread (its memory transferred, not copied); the thread skips the
 * all-zero grains and returns the others deflated, packed in the chunk's own memory. Deflate is the cost of a
 * stream-optimized upload (tens of MB/s per core), so it runs on as many threads as the host has cores,
 * up to four; the upload keeps a few chunks in flight per thread and takes the results in order.
 *
 * Output is a pure function of the grain: the level is fixed, and a grain whose two 4 KiB samples look
 * random (over 7.5 bits of entropy per byte: random or already-compressed data) is stored (deflate level
 * 0, ~20× cheaper than compressing it for nothing, the same size within a few bytes).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * zlib level 2: on text it gives ~5% more bytes than qemu-img's level 6 at 4-5× the speed (measured
 * on 64 KiB grains here), which is what lets two cores keep up with a 50 MB/s uplink.
 */
export const DEFLATE_LEVEL = 2;

// Plain JavaScript: the thread runs it with `eval`, outside the TypeScript loader.
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { deflateSync } = require('node:zlib');
const v8 = require('node:v8');
const vm = require('node:vm');
// Every grain deflated leaves a dead output buffer of a whole grain (its chunkSize, however small the
// deflated bytes) outside the heap; V8 collects them only after 64 MiB have piled up (per thread: +60 MiB
// RSS each, measured). A collection every few MiB allocated keeps the thread small. Counted by what was
// allocated, not by the deflated bytes: text deflates 5:1, so 8 MiB of output had left ~40 MiB of garbage.
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');
const GC_EVERY_BYTES = 4 * 1024 * 1024;
let sinceGc = 0;
const SAMPLE = 4096;
let zero = Buffer.alloc(0);
const counts = new Uint32Array(256);
/** Bits per byte of a sample (Shannon): random or already-compressed data is close to 8. */
function entropy(bytes) {
  counts.fill(0);
  for (let i = 0; i < bytes.length; i++) counts[bytes[i]]++;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    if (counts[i] === 0) continue;
    const p = counts[i] / bytes.length;
    h -= p * Math.log2(p);
  }
  return h;
}
function incompressible(grain) {
  // Two samples, at the start and in the middle; both must look random (over 7.5 bits per byte).
  for (const at of [0, grain.length / 2]) if (entropy(grain.subarray(at, at + SAMPLE)) < 7.5) return false;
  return true;
}
parentPort.on('message', ({ id, memory, length, grainBytes, level }) => {
  if (zero.length !== grainBytes) zero = Buffer.alloc(grainBytes);
  const bytes = Buffer.from(memory, 0, length);
  const found = [];
  const outputs = [];
  let total = 0;
  for (let i = 0, at = 0; at < length; i++, at += grainBytes) {
    let grain = bytes.subarray(at, Math.min(at + grainBytes, length));
    if (grain.length < grainBytes) {
      // The disk's last grain, partial: padded with zeros to a whole grain, as every reader expects.
      const whole = Buffer.alloc(grainBytes);
      grain.copy(whole);
      grain = whole;
    }
    if (grain.equals(zero)) continue;
    // One output chunk big enough for any grain: no growing and joining of 16 KiB chunks.
    const out = deflateSync(grain, { level: incompressible(grain) ? 0 : level, chunkSize: grainBytes + 1024 });
    sinceGc += grainBytes + 1024;
    found.push(i, out.length);
    outputs.push(out);
    total += out.length;
  }
  // The outputs go back in the chunk's own memory (it has room: see CHUNK_SLACK_PER_GRAIN), read by now.
  const view = new Uint8Array(memory);
  let at = 0;
  for (const out of outputs) { view.set(out, at); at += out.length; }
  const index = new Int32Array(found);
  // Before any collection: the most this thread holds outside its heap, garbage included.
  const external = v8.getHeapStatistics().external_memory;
  parentPort.postMessage({ id, memory, index, external }, [memory, index.buffer]);
  if (sinceGc >= GC_EVERY_BYTES) {
    sinceGc = 0;
    collect();
  }
});
`;

/**
 * Bytes per grain a chunk's memory needs beyond the grain: the thread writes the deflated grains back
 * into it, and a stored (incompressible) grain is 11 bytes longer than the grain (zlib header, block
 * header, Adler-32).
 */
export const CHUNK_SLACK_PER_GRAIN = 64;

/** The grains of a chunk that hold data: `grain` counts from the chunk's first grain. */
export interface DeflatedChunk {
  /** Views of `memory`: valid until the memory is handed out again. */
  grains: { grain: number; data: Uint8Array }[];
  /** The chunk's memory, back from the thread, holding the deflated grains. */
  memory: ArrayBuffer;
  /**
   * Bytes the thread held outside its V8 heap just before it answered: the chunk's memory, this chunk's
   * deflated grains and the dead output buffers of earlier ones, which its collection every few MiB
   * allocated (GC_EVERY_BYTES in THREAD_SOURCE) keeps small.
   */
  threadExternalBytes: number;
}

interface Pending {
  resolve(result: DeflatedChunk): void;
  reject(err: Error): void;
}

class DeflatePool {
  private readonly threads: Worker[] = [];
  private readonly pending = new Map<number, Pending & { thread: number }>();
  private nextId = 0;
  private next = 0;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.threads.push(this.spawn(i));
  }

  /**
   * Thread `slot`. A thread that fails or exits fails only the chunks it holds and is replaced at once: a
   * dead thread left in the rotation would swallow every later chunk posted to it, and the upload waiting
   * on one would wait for ever.
   */
  private spawn(slot: number): Worker {
    const thread = new Worker(THREAD_SOURCE, { eval: true });
    thread.unref();
    type Reply = { id: number; memory: ArrayBuffer; index: Int32Array; external: number };
    thread.on('message', ({ id, memory, index, external }: Reply) => {
      const p = this.pending.get(id);
      this.pending.delete(id);
      this.refs();
      const grains: DeflatedChunk['grains'] = [];
      let at = 0;
      for (let k = 0; k < index.length; k += 2) {
        const length = index[k + 1]!;
        grains.push({ grain: index[k]!, data: new Uint8Array(memory, at, length) });
        at += length;
      }
      p?.resolve({ grains, memory, threadExternalBytes: external });
    });
    let failure: Error | undefined;
    thread.on('error', (err) => (failure = err));
    thread.on('exit', (code) => {
      const err = failure ?? new Error(`a deflate thread exited (code ${code})`);
      for (const [id, p] of this.pending) {
        if (p.thread !== slot) continue;
        this.pending.delete(id);
        p.reject(err);
      }
      if (this.threads[slot] === thread) this.threads[slot] = this.spawn(slot);
      this.refs();
    });
    return thread;
  }

  /** Threads hold the process open exactly while a chunk is outstanding. */
  private refs(): void {
    for (const t of this.threads) {
      if (this.pending.size > 0) t.ref();
      else t.unref();
    }
  }

  deflate(memory: ArrayBuffer, length: number, grainBytes: number): Promise<DeflatedChunk> {
    const id = this.nextId++;
    const slot = this.next++ % this.threads.length;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, thread: slot });
      if (this.pending.size === 1) this.refs();
      this.threads[slot]!.postMessage({ id, memory, length, grainBytes, level: DEFLATE_LEVEL }, [memory]);
    });
  }
}

let pool: DeflatePool | undefined;

/** Threads in the pool: one per core, at most four (VMCONVOY_DEFLATE_THREADS overrides, for benchmarks). */
export function deflateThreads(): number {
  const set = Number(process.env.VMCONVOY_DEFLATE_THREADS);
  if (Number.isSafeInteger(set) && set > 0) return Math.min(set, 16);
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * The grains of the first `length` bytes of `memory` that hold data, deflated on a pool thread. `memory` is
 * transferred (detached until the promise resolves) and comes back in the result.
 */
export function deflateChunkOffThread(memory: ArrayBuffer, length: number, grainBytes: number): Promise<DeflatedChunk> {
  pool ??= new DeflatePool(deflateThreads());
  return pool.deflate(memory, length, grainBytes);
}
