/**
 * One wire-benchmark uploader in its own process (its peak RSS and CPU are its own): prints one JSON line
 * `{mode, seconds, cpuSeconds, peakRssBytes, imageBytes}`.
 *
 *   node --import tsx bench/wire-child.ts <as-is|stream|produce> <image> <endpoint> <bucket> <key> <partBytes> <concurrency>
 *
 * `as-is` and `stream` run vmconvoy's upload (the file byte for byte, or the stream-optimized VMDK made on
 * the fly) until every part is in S3; `produce` makes the stream-optimized VMDK and discards it (the
 * producer's own speed, no network).
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { open, stat } from 'node:fs/promises';
import { createAwsClients } from '../common/aws/clients';
import { uploadImage } from '../activities/upload';
import { streamVmdk } from '../activities/disk-image/stream-vmdk-file';
import { rawDataRanges } from '../activities/disk-image/data-map';
import { LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY } from '../dev/services';

type Mode = 'as-is' | 'stream' | 'produce';

async function main(): Promise<void> {
  const [mode, image, endpoint, bucket, key, partArg, concurrencyArg] = process.argv.slice(2) as [
    Mode,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const { size } = await stat(image);
  // Where the memory goes: the process after loading its modules, and at its fullest (sampled every 50 ms)
  // the parts of it Node can name: V8's heap, memory outside it (Buffers, ArrayBuffers), and the rest
  // (code, the threads' own isolates and heaps, zlib's windows, malloc's arenas) as RSS minus those.
  const atLoad = process.memoryUsage();
  let atPeak = atLoad;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > atPeak.rss) atPeak = m;
  }, 50);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let imageBytes: number;
  if (mode === 'produce') {
    const ranges = await rawDataRanges(process.env.QEMU_IMG ?? 'qemu-img', image, 0, size);
    const handle = await open(image, 'r');
    const { writer, records } = streamVmdk(handle, { virtualBytes: size, cid: 1 }, undefined, 0, ranges);
    for await (const r of records) void r;
    imageBytes = writer.bytesWritten;
    await handle.close();
  } else {
    const clients = createAwsClients({
      region: LOCAL_REGION,
      s3Endpoint: endpoint,
      bucket,
      keyPrefix: `${key}/`,
      accessKeyId: LOCAL_ACCESS_KEY_ID,
      secretAccessKey: LOCAL_SECRET_ACCESS_KEY,
      maxAttempts: 3,
    });
    const result = await uploadImage(
      { s3: clients.s3, bucket, keyPrefix: `${key}/` },
      {
        batch: 'bench',
        vm: 'wire',
        image,
        imageBytes: size,
        partSizeBytes: Number(partArg),
        concurrency: Number(concurrencyArg),
        ...(mode === 'stream' ? { streamOptimized: { virtualBytes: size } } : {}),
      }
    );
    imageBytes = result.imageBytes ?? size;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  const mib = (m: NodeJS.MemoryUsage): Record<string, number> => ({
    rss: m.rss / 2 ** 20,
    heapUsed: m.heapUsed / 2 ** 20,
    heapTotal: m.heapTotal / 2 ** 20,
    external: m.external / 2 ** 20,
    arrayBuffers: m.arrayBuffers / 2 ** 20,
  });
  process.stdout.write(
    `${JSON.stringify({
      mode,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      imageBytes,
      memoryMiB: { atLoad: mib(atLoad), atPeak: mib(atPeak) },
    })}\n`
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
