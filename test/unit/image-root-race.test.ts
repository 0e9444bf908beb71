/**
 * The image-root check cannot be raced (issue 15, item 2). A harness swaps a folder inside the roots for a
 * symbolic link to a folder outside them, over and over, on a thread of its own, while the opener opens a
 * file through that folder. An escape is an open that succeeds and holds the outside file.
 *
 * The check as it was (realpath, check, then stat and open the path again; a copy below) escapes within
 * seconds: 133 escapes in 47,804 attempts in the review's harness; this harness typically sees its first
 * escape within the first few thousand attempts. The check on the open descriptor
 * (activities/open-within-roots.ts) must show none over the whole run.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { openImage } from '../../activities/disk-image/image-file';
import { tempDir } from '../helpers/testbed';

const INSIDE = 'INSIDE-THE-ROOTS';
const OUTSIDE = 'OUTSIDE-SECRET';

let tmp: { dir: string; remove(): Promise<void> };
let root: string;
let target: string;

before(async () => {
  tmp = await tempDir('vmconvoy-race-');
  root = path.join(tmp.dir, 'root');
  await mkdir(path.join(root, 'd'), { recursive: true });
  await mkdir(path.join(tmp.dir, 'outside'));
  await writeFile(path.join(root, 'd', 'disk.img'), INSIDE);
  await writeFile(path.join(tmp.dir, 'outside', 'disk.img'), OUTSIDE);
  target = path.join(root, 'd', 'disk.img');
});
after(() => tmp.remove());

/**
 * Swaps `<root>/d` (a folder) for a symbolic link to `<outside>` and back, as fast as it can, on its own
 * thread (synchronous calls: nothing on the test's event loop or thread pool slows it down).
 */
function startSwapper(dir: string): { stop(): Promise<number> } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const fs = require('node:fs');
    const path = require('node:path');
    const { dir, flag } = workerData;
    const d = path.join(dir, 'root', 'd');
    const parked = path.join(dir, 'root', 'd.parked');
    const outside = path.join(dir, 'outside');
    let swaps = 0;
    while (Atomics.load(flag, 0) === 0) {
      fs.renameSync(d, parked);
      fs.symlinkSync(outside, d);
      fs.unlinkSync(d);
      fs.renameSync(parked, d);
      swaps++;
    }
    parentPort.postMessage(swaps);
  `;
  const worker = new Worker(code, { eval: true, workerData: { dir, flag } });
  const swaps = new Promise<number>((resolve, reject) => {
    worker.once('message', (n: number) => resolve(n));
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      Atomics.store(flag, 0, 1);
      const n = await swaps;
      await worker.terminate();
      return n;
    },
  };
}

interface RaceResult {
  attempts: number;
  escapes: number;
  inside: number;
  refused: Map<string, number>;
  swaps: number;
}

/**
 * Opens `target` with `opener` from 4 concurrent loops while the swapper runs, for `ms` or until
 * `stopAfterEscapes` escapes; classifies each attempt by what the opened file holds.
 */
async function race(
  opener: (file: string, roots: string[]) => Promise<FileHandle>,
  ms: number,
  stopAfterEscapes = Infinity
): Promise<RaceResult> {
  const result: RaceResult = { attempts: 0, escapes: 0, inside: 0, refused: new Map(), swaps: 0 };
  const swapper = startSwapper(tmp.dir);
  const until = Date.now() + ms;
  const loop = async (): Promise<void> => {
    while (Date.now() < until && result.escapes < stopAfterEscapes) {
      result.attempts++;
      let handle: FileHandle;
      try {
        handle = await opener(target, [root]);
      } catch (err) {
        let kind =
          err instanceof ApplicationFailure ? (err.type ?? 'failure') : ((err as { code?: string }).code ?? 'error');
        // Refusals only the check on the open descriptor can make: the pre-checks passed, then the swap won.
        if (err instanceof Error && /replaced while it was opened|changed while it was being opened/.test(err.message))
          kind += ' (caught after the open)';
        result.refused.set(kind, (result.refused.get(kind) ?? 0) + 1);
        continue;
      }
      try {
        const held = (await handle.readFile()).toString();
        if (held === OUTSIDE) result.escapes++;
        else if (held === INSIDE) result.inside++;
        else assert.fail(`read ${JSON.stringify(held)}`);
      } finally {
        await handle.close();
      }
    }
  };
  try {
    await Promise.all([loop(), loop(), loop(), loop()]);
  } finally {
    result.swaps = await swapper.stop();
  }
  return result;
}

/** The check of fef23a8's image-file.ts, reduced to what decides: realpath, roots, stat, open, fstat. */
async function oldOpen(file: string, roots: string[]): Promise<FileHandle> {
  const real = await realpath(file);
  const resolvedRoots = await Promise.all(roots.map((r) => realpath(r)));
  const inside = resolvedRoots.some((r) => {
    const rel = path.relative(r, real);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
  if (!inside) throw ApplicationFailure.nonRetryable('outside', 'ImageOutsideRoots');
  const before = await stat(real);
  if (!before.isFile()) throw ApplicationFailure.nonRetryable('not a file', 'ImageUnreadable');
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  const afterOpen = await handle.stat();
  if (!afterOpen.isFile() || afterOpen.ino !== before.ino || afterOpen.dev !== before.dev) {
    await handle.close();
    throw ApplicationFailure.nonRetryable('changed', 'ImageUnreadable');
  }
  return handle;
}

function describe(r: RaceResult): string {
  const refused = [...r.refused].map(([k, n]) => `${k} ${n}`).join(', ');
  return `${r.attempts} attempts, ${r.swaps} swaps: ${r.escapes} escapes, ${r.inside} inside, refused: ${refused}`;
}

test('the harness is real: the old path-based check escapes the roots under the swap race', async () => {
  const result = await race(oldOpen, 10_000, 3);
  console.log(`old check: ${describe(result)}`);
  assert.ok(result.escapes > 0, `the old check should escape at least once in 10 s: ${describe(result)}`);
});

test('openImage: 0 escapes over 8 s of the swap race, and the file inside still opens', async () => {
  const result = await race(async (file, roots) => (await openImage(file, roots)).handle, 8_000);
  console.log(`descriptor check: ${describe(result)}`);
  assert.equal(result.escapes, 0, describe(result));
  assert.ok(result.attempts >= 500, `too few attempts to mean anything: ${describe(result)}`);
  assert.ok(result.inside > 0, `the file inside the roots should open between swaps: ${describe(result)}`);
  assert.ok(result.swaps > 100, `the swapper should have run: ${describe(result)}`);
  // Only refusals a race can cause: the path gone for an instant, led outside, or changed while opened.
  for (const kind of result.refused.keys())
    assert.match(kind, /^(ImageNotFound|ImageOutsideRoots|ImageUnreadable)\b/, describe(result));
});
