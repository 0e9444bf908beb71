/**
 * RAW disks for the stream-optimized upload's tests and benchmark: sparse files (a 5 GiB disk costs what
 * its data costs) with regions of random bytes (incompressible), text (compressible) and zeros (holes).
 * qemu-img makes the other containers from them; these only place bytes.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';

const execFileAsync = promisify(execFile);

export interface Region {
  /** Byte offset in the disk. */
  at: number;
  bytes: number;
  kind: 'random' | 'text';
}

const WORDS =
  'the disk image of a virtual machine holds logs configuration files package databases and source code with many repeated words and lines'.split(
    ' '
  );

/** Text like a log: words from a small vocabulary with counters, so it compresses about 4:1, as logs do. */
export function textBytes(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  const rand = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  let at = 0;
  let line = 0;
  while (at < bytes) {
    let text = `${String(line++).padStart(8, '0')} ${rand(100000)}`;
    const words = 6 + rand(10);
    for (let i = 0; i < words; i++) text += ` ${WORDS[rand(WORDS.length)]}`;
    at += out.write(`${text}\n`, at, 'latin1');
  }
  return out;
}

/** A sparse RAW disk of `virtualBytes` with `regions` written (the rest are holes: zeros). */
export async function makeSparseDisk(file: string, virtualBytes: number, regions: Region[]): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.truncate(virtualBytes);
    const CHUNK = 8 * 1024 * 1024;
    for (const r of regions) {
      for (let done = 0; done < r.bytes; done += CHUNK) {
        const n = Math.min(CHUNK, r.bytes - done);
        const data = r.kind === 'random' ? randomBytes(n) : textBytes(n, r.at + done + 1);
        await handle.write(data, 0, n, r.at + done);
      }
    }
  } finally {
    await handle.close();
  }
}

/** qemu-img's exit code and output (non-zero is a result here, not an error). */
export async function qemuImgRun(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.env.QEMU_IMG ?? 'qemu-img', args, {
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
