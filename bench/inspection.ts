/**
 * inspection: a look inside the guest reads metadata, not the disk. A 100 GiB virtual disk (sparse) holding
 * a 4 GiB ext4 root with Ubuntu 22.04, in each container VM Import takes (RAW, stream-optimized VMDK,
 * dynamic VHD; built with sfdisk, mke2fs -d and qemu-img), inspected by activities/guest: bytes read from
 * the image file and wall time per inspection (median of the runs), against the goal of at most 64 MiB and
 * 2 s. For comparison, what a content check without a container reader first has to do: `qemu-img convert`
 * of the stream VMDK back to a RAW disk (the simulator's way, which may take its time: it is not a product
 * path).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inspectGuest } from '../activities/guest/inspect-guest';
import type { GuestContainer } from '../test/helpers/guest-images';
import { makeLargeGuest } from '../test/helpers/guest-images-more';
import type { BenchContext, BenchFigure, BenchResult } from './types';

const MiB = 1024 * 1024;
const GOAL_BYTES = 64 * MiB;
const GOAL_SECONDS = 2;
const CONTAINERS: GuestContainer[] = ['raw', 'stream-vmdk', 'dynamic-vhd'];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function inspectionBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const runs = ctx.quick ? 3 : 7;
  const dir = await mkdtemp(path.join(tmpdir(), 'vmconvoy-bench-inspection-'));
  const figures: BenchFigure[] = [];
  const notes: string[] = [];
  try {
    for (const container of CONTAINERS) {
      ctx.log(`building a 100 GiB ${container} with a 4 GiB ext4 root`);
      const file = await makeLargeGuest(dir, `large-${container}`, container);
      const seconds: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        const r = await inspectGuest(file);
        seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
        if (r.verdict !== 'ok') throw new Error(`${container}: verdict ${r.verdict} ${JSON.stringify(r.reasons)}`);
        bytes = r.bytesRead;
      }
      const s = median(seconds);
      figures.push(
        {
          label: `${container}: bytes read`,
          value: bytes / MiB,
          unit: 'MiB',
          goal: '<= 64 MiB',
          met: bytes <= GOAL_BYTES,
        },
        { label: `${container}: time per inspection`, value: s, unit: 's', goal: '<= 2 s', met: s <= GOAL_SECONDS }
      );
      notes.push(
        `${container}: ${seconds.map((x) => x.toFixed(3)).join(', ')} s over ${runs} runs (the first includes loading libext2fs)`
      );
    }
    const t0 = process.hrtime.bigint();
    await promisify(execFile)(process.env.QEMU_IMG ?? 'qemu-img', [
      'convert',
      '-q',
      '-O',
      'raw',
      path.join(dir, 'large-stream-vmdk'),
      path.join(dir, 'converted.raw'),
    ]);
    figures.push({
      label: 'for comparison: qemu-img convert stream VMDK to RAW',
      value: Number(process.hrtime.bigint() - t0) / 1e9,
      unit: 's',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    name: 'inspection',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: { virtualDiskGiB: 100, rootGiB: 4, fileSystem: 'ext4', runs, containers: CONTAINERS },
    figures,
    notes,
  };
}
