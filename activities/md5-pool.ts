/**
 * MD5 of upload parts off the main thread. Hashing a 10 MiB part takes ~25 ms of CPU; on the event loop it
 * stalls every other activity, heartbeat and socket of the worker, and caps one worker's uploads at one
 * core's MD5 speed (~430 MB/s measured). A few threads hash the parts in shared memory (no copy): the lane
 * buffers are allocated on a SharedArrayBuffer, and the thread reads the same bytes the PUT sends.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Plain CommonJS, evaluated in each thread: no TypeScript loader needed there. */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buffer, offset, length }) => {
  const digest = createHash('md5').update(new Uint8Array(buffer, offset, length)).digest();
  parentPort.postMessage({ id, digest });
});
`;

interface Pending {
  resolve(digest: Buffer): void;
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
      thread.on('message', ({ id, digest }: { id: number; digest: Uint8Array }) => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        this.refs();
        p?.resolve(Buffer.from(digest));
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

  digest(view: Buffer): Promise<Buffer> {
    if (!(view.buffer instanceof SharedArrayBuffer)) return Promise.reject(new TypeError('md5 pool: the buffer must be shared (sharedBuffer())'));
    const id = this.nextId++;
    const thread = this.threads[this.next++ % this.threads.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.refs();
      thread.postMessage({ id, buffer: view.buffer, offset: view.byteOffset, length: view.length });
    });
  }
}

let pool: Md5Pool | undefined;

/** The MD5 of `view` (a Buffer over a SharedArrayBuffer), computed on a pool thread. */
export function md5OffThread(view: Buffer): Promise<Buffer> {
  pool ??= new Md5Pool(Math.max(1, Math.min(4, availableParallelism())));
  return pool.digest(view);
}

/** A Buffer over shared memory, readable by the pool's threads. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}
