/**
 * The deflate pool (activities/disk-image/deflate-pool.ts) after one of its threads dies: the chunk that
 * killed it fails, and every later chunk still comes back. A dead thread left in the rotation swallowed
 * every chunk posted to it, and the upload waiting on one waited for ever. And what a thread holds outside
 * its heap stays a few MiB however many grains it deflates.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHUNK_SLACK_PER_GRAIN, deflateChunkOffThread, deflateThreads } from '../../activities/disk-image/deflate-pool';

const GRAIN = 64 * 1024;

function chunk(fill: number): ArrayBuffer {
  const memory = new ArrayBuffer(2 * (GRAIN + CHUNK_SLACK_PER_GRAIN));
  new Uint8Array(memory, 0, GRAIN).fill(fill);
  return memory;
}

/** The promise's outcome, or 'hung' when it has not settled within `ms`. */
function settled<T>(promise: Promise<T>, ms: number): Promise<'resolved' | 'rejected' | 'hung'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const
    ),
    new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms).unref()),
  ]);
}

test('a thread killed by a bad chunk fails that chunk only; every later chunk is deflated', async () => {
  // A length past the chunk's memory: the thread throws reading it, and dies.
  assert.equal(await settled(deflateChunkOffThread(new ArrayBuffer(16), 2 * GRAIN, GRAIN), 20_000), 'rejected');
  const later = Array.from({ length: 2 * deflateThreads() + 1 }, (_, i) =>
    settled(deflateChunkOffThread(chunk(i + 1), 2 * GRAIN, GRAIN), 20_000)
  );
  assert.deepEqual(await Promise.all(later), new Array(later.length).fill('resolved'));
  // And the result is right: one grain of data (the second is zeros), deflated.
  const done = await deflateChunkOffThread(chunk(7), 2 * GRAIN, GRAIN);
  assert.deepEqual(
    done.grains.map((g) => g.grain),
    [0]
  );
  assert.ok(done.grains[0]!.data.length < 1024, 'a grain of one repeated byte deflates to little');
});

test('a thread collects the output buffers of the grains it deflated every few MiB, however well they deflate', async () => {
  // Log-like text deflates about 5:1, but every grain deflated leaves a dead buffer of a whole grain behind.
  // Counting the deflated bytes instead of those buffers let ~40 MiB of them pile up per thread.
  const grains = 32;
  const text = Buffer.alloc(grains * GRAIN);
  for (let at = 0, line = 0; at < text.length; line++)
    at += text.write(`${line} 2026-12-02T16:${line % 60} worker-${line % 7} part ${line * 7919} sent\n`, at);
  const textChunk = (): ArrayBuffer => {
    const memory = new ArrayBuffer(grains * (GRAIN + CHUNK_SLACK_PER_GRAIN));
    new Uint8Array(memory).set(text);
    return memory;
  };
  let most = 0;
  let deflatedBytes = 0;
  // 40 MiB of grains per thread, a few chunks in flight per thread, as an upload keeps them.
  for (let round = 0; round < 20; round++) {
    const done = await Promise.all(
      Array.from({ length: 2 * deflateThreads() }, () => deflateChunkOffThread(textChunk(), text.length, GRAIN))
    );
    for (const d of done) {
      most = Math.max(most, d.threadExternalBytes);
      for (const g of d.grains) deflatedBytes += g.data.length;
    }
  }
  const MiB = 1024 * 1024;
  const given = 20 * 2 * deflateThreads() * text.length;
  assert.ok(deflatedBytes < given / 3, `the text deflated (${deflatedBytes} of ${given} bytes)`);
  assert.ok(most <= 16 * MiB, `a thread held ${(most / MiB).toFixed(1)} MiB outside its heap`);
});
