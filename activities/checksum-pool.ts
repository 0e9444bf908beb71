/**
 * Checksums of upload parts off the main thread: the CRC32 every PUT carries (x-amz-checksum-crc32, which
 * S3 verifies) and, on resume only, the MD5 that proves a part already in S3 holds these bytes (its ETag).
 * On the event loop a 10 MiB MD5 takes ~15 ms and stalls every other activity, heartbeat and socket of the
 * worker; CRC32 is about 4× cheaper but still adds up at hundreds of MB/s. The part's memory is transferred
 * to the thread and back with the digest: nothing is copied, and no thread keeps a reference to it. (Shared
 * memory did keep one: a hashing thread allocates almost nothing, so its garbage collector never ran and
 * every part buffer it had seen stayed alive, about 1 MB per VM.)
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

export type ChecksumAlgorithm = 'crc32' | 'md5';

// Plain JavaScript: the thread runs it with `eval`, outside the TypeScript loader.
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { crc32 } = require('node:zlib');
parentPort.on('message', ({ id, algorithm, memory, length }) => {
  const bytes = new Uint8Array(memory, 0, length);
  let digest;
  if (algorithm === 'crc32') {
    digest = new Uint8Array(4);
    new DataView(digest.buffer).setUint32(0, crc32(bytes));
  } else {
    digest = createHash('md5').update(bytes).digest();
  }
  parentPort.postMessage({ id, digest, memory }, [memory]);
});
`;

export interface Hashed {
  /** The digest: 4 bytes big-endian for CRC32 (as S3 wants it, base64), 16 for MD5. */
  digest: Buffer;
  /** The memory that was hashed, back from the thread (the one passed in is detached now). */
  memory: ArrayBuffer;
}

interface Pending {
  resolve(result: Hashed): void;
  reject(err: Error): void;
}

class ChecksumPool {
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
        p?.resolve({ digest: Buffer.from(digest), memory });
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

  digest(algorithm: ChecksumAlgorithm, memory: ArrayBuffer, length: number): Promise<Hashed> {
    const id = this.nextId++;
    const thread = this.threads[this.next++ % this.threads.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.refs();
      thread.postMessage({ id, algorithm, memory, length }, [memory]);
    });
  }
}

let pool: ChecksumPool | undefined;

/**
 * The checksum of the first `length` bytes of `memory`, computed on a pool thread. `memory` is transferred
 * (it is detached until the promise resolves) and comes back in the result.
 */
export function checksumOffThread(algorithm: ChecksumAlgorithm, memory: ArrayBuffer, length: number): Promise<Hashed> {
  pool ??= new ChecksumPool(Math.max(1, Math.min(4, availableParallelism())));
  return pool.digest(algorithm, memory, length);
}
