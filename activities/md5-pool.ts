/**
 * MD5 of upload parts off the main thread. Hashing a 10 MiB part takes ~25 ms of CPU; on the event loop it
 * stalls every other activity, heartbeat and socket of the worker, and caps one worker's uploads at one
 * core's MD5 speed (~430 MB/s measured). A few threads hash instead. The part's memory is transferred to
 * the thread and back with the digest: nothing is copied, and no thread keeps a reference to it. (Shared
 * memory did keep one: a hashing thread allocates almost nothing, so its garbage collector never ran and
 * every part buffer it had seen stayed alive, about 1 MB per VM.)
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Plain CommonJS, evaluated in each thread: no TypeScript loader needed there. */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, memory, length }) => {
  const digest = createHash('md5').update(new Uint8Array(memory, 0, length)).digest();
  parentPort.postMessage({ id, digest, memory }, [memory]);
});
`;

export interface Hashed {
  md5: Buffer;
  /** The memory that was hashed, back from the thread (the one passed in is detached now). */
  memory: ArrayBuffer;
}

interface Pending {
  resolve(result: Hashed): void;
  reject(err: Error): void;
}

class Md5Pool {
  private readonly threads: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private next = 0;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const thread = new Worker(THREAD_SOURCE, { eval: true });
      // Idle threads must not keep a process alive (a test runner, a CLI); busy ones must (see refs()).
      thread.unref();
      thread.on('message', ({ id, digest, memory }: { id: number; digest: Uint8Array; memory: ArrayBuffer }) => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        this.refs();
        p?.resolve({ md5: Buffer.from(digest), memory });
      });
      thread.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        this.refs();
      });
      this.threads.push(thread);
    }
  }

  /** Threads hold the process open exactly while a digest is outstanding. */
  private refs(): void {
    for (const t of this.threads) {
      if (this.pending.size > 0) t.ref();
      else t.unref();
    }
  }

  digest(memory: ArrayBuffer, length: number): Promise<Hashed> {
    const id = this.nextId++;
    const thread = this.threads[this.next++ % this.threads.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.refs();
      thread.postMessage({ id, memory, length }, [memory]);
    });
  }
}

let pool: Md5Pool | undefined;

/**
 * The MD5 of the first `length` bytes of `memory`, computed on a pool thread. `memory` is transferred (it
 * is detached until the promise resolves) and comes back in the result.
 */
export function md5OffThread(memory: ArrayBuffer, length: number): Promise<Hashed> {
  pool ??= new Md5Pool(Math.max(1, Math.min(4, availableParallelism())));
  return pool.digest(memory, length);
}
