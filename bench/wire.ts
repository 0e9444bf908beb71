/**
 * wire: what crosses a site's uplink for a mostly empty disk (issue 19). An 8 GiB RAW disk holding 1 GiB
 * of data (half random bytes, half log-like text; the rest zeros, as holes) is uploaded through a proxy
 * that caps the uplink at 50 MB/s, three ways, in the same run:
 *   (a) vmconvoy as-is: the RAW file byte for byte;
 *   (b) vmconvoy stream-optimized: the VMDK made on the fly (zero grains skipped, deflate on threads);
 *   (c) by hand: `qemu-img convert -O vmdk -o subformat=streamOptimized`, then vmconvoy as-is (the
 *       conversion's time counts).
 * Time is until every part is in S3; bytes are what the proxy saw. Each uploader runs in its own process
 * (peak RSS and CPU its own). The producer alone (no network) with two deflate threads shows whether
 * compression keeps up with the link on two cores.
 */
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, startS3Server } from '../dev/services';
import { startCountingProxy } from '../test/helpers/counting-proxy';
import { makeSparseDisk } from '../test/helpers/sparse-disks';
import { localS3Client, tempDir } from '../test/helpers/testbed';
import type { BenchContext, BenchResult } from './types';
import { runJsonChild } from './util';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const LINK_BYTES_PER_SECOND = 50e6;

interface ChildResult {
  mode: string;
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  imageBytes: number;
  /** process.memoryUsage() in MiB after loading the modules and when RSS was highest. */
  memoryMiB?: Record<'atLoad' | 'atPeak', Record<string, number>>;
}

function memoryText(m: NonNullable<ChildResult['memoryMiB']>): string {
  const one = (u: Record<string, number>): string =>
    Object.entries(u)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', ');
  return `after loading: ${one(m.atLoad)}; at the peak: ${one(m.atPeak)}`;
}

/** Where the image and the S3 server's objects live: tmpfs when it has room (the disk is not measured). */
async function workDir(bytesNeeded: number): Promise<{ dir: string; where: string; remove(): Promise<void> }> {
  try {
    const { bavail, bsize } = await statfs('/dev/shm');
    if (bavail * bsize > bytesNeeded) {
      const dir = await mkdtemp(path.join('/dev/shm', 'vmconvoy-bench-wire-'));
      return { dir, where: 'tmpfs (/dev/shm)', remove: () => rm(dir, { recursive: true, force: true }) };
    }
  } catch {
    // No /dev/shm: the disk then.
  }
  return { ...(await tempDir('vmconvoy-bench-wire-')), where: 'local disk' };
}

export async function wireBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const virtualBytes = ctx.quick ? 1 * GiB : 8 * GiB;
  const dataBytes = ctx.quick ? 128 * MiB : 1 * GiB;
  const partSizeBytes = 10 * MiB;
  const concurrency = 4;
  const qemuImg = process.env.QEMU_IMG ?? 'qemu-img';
  // The sparse image, qemu-img's VMDK, and the as-is upload's objects (the whole disk) at most.
  const dir = await workDir(virtualBytes + 2 * dataBytes + GiB);
  const s3Server = await startS3Server({ dir: path.join(dir.dir, 's3') });
  const proxy = await startCountingProxy(s3Server.endpoint, { bytesPerSecond: LINK_BYTES_PER_SECOND });
  const s3 = localS3Client(s3Server.endpoint);
  const bucket = 'bench-wire';
  const load: number[][] = [];
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const image = path.join(dir.dir, 'disk.raw');
    // Data in four places (the rest holes): random, text, random, text; the last 1 MiB of the disk too.
    const quarter = dataBytes / 4;
    await makeSparseDisk(image, virtualBytes, [
      { at: 16 * MiB, bytes: quarter, kind: 'random' },
      { at: virtualBytes / 4, bytes: quarter, kind: 'text' },
      { at: virtualBytes / 2, bytes: quarter - MiB, kind: 'random' },
      { at: (virtualBytes * 3) / 4, bytes: quarter, kind: 'text' },
      { at: virtualBytes - MiB, bytes: MiB, kind: 'random' },
    ]);
    ctx.log(
      `image: ${virtualBytes / GiB} GiB RAW, ${dataBytes / MiB} MiB of data; load average ${loadavg()[0]!.toFixed(1)}`
    );

    const clear = async (): Promise<void> => {
      for (;;) {
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
        const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length === 0) return;
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
      }
    };
    const upload = async (
      mode: 'as-is' | 'stream',
      file: string,
      label: string
    ): Promise<ChildResult & { sent: number }> => {
      proxy.reset();
      load.push(loadavg());
      const r = await runJsonChild<ChildResult>(path.join(REPO_ROOT, 'bench', 'wire-child.ts'), [
        mode,
        file,
        proxy.endpoint,
        bucket,
        label,
        String(partSizeBytes),
        String(concurrency),
      ]);
      const sent = proxy.putBytes(/image\.part/);
      await clear();
      ctx.log(
        `${label}: ${r.seconds.toFixed(1)} s, ${(sent / 1e6).toFixed(0)} MB sent, ${r.cpuSeconds.toFixed(1)} CPU-s, peak RSS ${(r.peakRssBytes / MiB).toFixed(0)} MiB`
      );
      if (r.memoryMiB) ctx.log(`${label}: memory (MiB) ${memoryText(r.memoryMiB)}`);
      return { ...r, sent };
    };

    const b = await upload('stream', image, 'b-stream-optimized');
    // (c): what a user would do by hand, conversion included.
    const vmdk = path.join(dir.dir, 'disk.vmdk');
    load.push(loadavg());
    const c0 = performance.now();
    await execFileAsync(qemuImg, [
      'convert',
      '-f',
      'raw',
      '-O',
      'vmdk',
      '-o',
      'subformat=streamOptimized',
      image,
      vmdk,
    ]);
    const convertSeconds = (performance.now() - c0) / 1000;
    ctx.log(`c: qemu-img convert ${convertSeconds.toFixed(1)} s`);
    const c = await upload('as-is', vmdk, 'c-qemu-then-as-is');
    const cFileBytes = (await stat(vmdk)).size;
    await rm(vmdk, { force: true });
    const a = await upload('as-is', image, 'a-as-is');
    // The producer alone with two deflate threads: its output rate against the link's.
    load.push(loadavg());
    const produced = await runJsonChild<ChildResult>(
      path.join(REPO_ROOT, 'bench', 'wire-child.ts'),
      ['produce', image, '-', '-', '-', '0', '0'],
      { ...process.env, VMCONVOY_DEFLATE_THREADS: '2' }
    );
    const producerMBps = produced.imageBytes / 1e6 / produced.seconds;
    // What two cores give when they are the producer's alone: its stream per CPU-second, twice (wall-clock
    // on a machine shared with other agents measures their load as much as the producer).
    const producerCapacity = (produced.imageBytes / 1e6 / produced.cpuSeconds) * 2;
    ctx.log(`producer alone (2 threads): ${producerMBps.toFixed(0)} MB/s of stream, ${produced.seconds.toFixed(1)} s`);

    const cSeconds = convertSeconds + c.seconds;
    const mb = (n: number): number => n / 1e6;
    const loadText = load.map((l) => l[0]!.toFixed(1)).join(', ');
    return {
      name: 'wire',
      finishedAt: new Date().toISOString(),
      quick: ctx.quick,
      parameters: {
        virtualGiB: virtualBytes / GiB,
        dataMiB: dataBytes / MiB,
        linkMBps: LINK_BYTES_PER_SECOND / 1e6,
        partMiB: partSizeBytes / MiB,
        concurrency,
        server: `versitygw (posix backend) on ${dir.where}, behind a 50 MB/s proxy`,
        loadAverage1m: loadText,
      },
      figures: [
        { label: '(a) as-is: time', value: a.seconds, unit: 's' },
        { label: '(a) as-is: sent', value: mb(a.sent), unit: 'MB' },
        { label: '(b) stream-optimized on the fly: time', value: b.seconds, unit: 's' },
        { label: '(b) stream-optimized on the fly: sent', value: mb(b.sent), unit: 'MB' },
        { label: '(c) qemu-img convert + as-is: time', value: cSeconds, unit: 's' },
        { label: '(c) of which qemu-img convert', value: convertSeconds, unit: 's' },
        { label: "(c) qemu-img's file, sent", value: mb(c.sent), unit: 'MB' },
        {
          label: '(b) bytes / (c) bytes',
          value: b.sent / cFileBytes,
          unit: '×',
          goal: '<= 1.05×',
          met: b.sent / cFileBytes <= 1.05,
        },
        {
          label: '(a) time / (b) time',
          value: a.seconds / b.seconds,
          unit: '×',
          goal: '>= 4×',
          met: a.seconds / b.seconds >= 4,
        },
        {
          label: '(c) time / (b) time',
          value: cSeconds / b.seconds,
          unit: '×',
          goal: '> 1×',
          met: cSeconds / b.seconds > 1,
        },
        { label: 'producer alone, 2 deflate threads, wall-clock', value: producerMBps, unit: 'MB/s' },
        {
          label: 'producer on 2 cores (stream per CPU-second × 2)',
          value: producerCapacity,
          unit: 'MB/s',
          goal: '>= 50 MB/s (the link)',
          met: producerCapacity >= 50,
        },
        {
          label: '(b) peak RSS',
          value: b.peakRssBytes / MiB,
          unit: 'MiB',
          goal: '<= 256 MiB',
          met: b.peakRssBytes / MiB <= 256,
        },
        ...(b.memoryMiB
          ? [
              { label: '(b) RSS after loading its modules', value: b.memoryMiB.atLoad.rss!, unit: 'MiB' },
              {
                label: '(b) RSS the upload adds (peak − after loading)',
                value: b.peakRssBytes / MiB - b.memoryMiB.atLoad.rss!,
                unit: 'MiB',
              },
            ]
          : []),
        { label: '(b) CPU', value: b.cpuSeconds, unit: 'CPU-s' },
        { label: '(a) peak RSS', value: a.peakRssBytes / MiB, unit: 'MiB' },
      ],
      notes: [
        `MB = 10^6 bytes. The proxy (test/helpers/counting-proxy.ts) passes request bodies of all connections together at 50 MB/s; part size ${partSizeBytes / MiB} MiB, ${concurrency} parts in flight for every run.`,
        `(b) deflates at zlib level 2 (disk-image/deflate-pool.ts) and stores grains whose two 4 KiB samples look random (over 7.5 bits of entropy per byte); qemu-img uses level 6, single-threaded. (b) finds the holes with qemu-img map (disk-image/data-map.ts).`,
        ...(b.memoryMiB
          ? [`(b)'s memory in MiB (process.memoryUsage(), sampled every 50 ms): ${memoryText(b.memoryMiB)}.`]
          : []),
        `The machine is shared with other agents: 1-minute load average before each run ${loadText} (order: b, c convert, c upload, a, producer).`,
      ],
    };
  } finally {
    s3.destroy();
    await proxy.close();
    await s3Server.stop();
    await dir.remove();
  }
}
