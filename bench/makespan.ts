/**
 * makespan: how close a fleet gets to the physical limits. Simulated VMs of mixed sizes, an uplink capped at
 * B (a proxy in front of S3), EC2's conversion quota of k = 5 and conversion time proportional to size
 * (the simulator converts r bytes/s per task). The lower bound LB is client/forecast/bound.ts's (the formula's
 * one home, shared with `vmconvoy plan`).
 * vmconvoy's schedule (separate upload and conversion limits) is measured against LB,
 * and so is the naive schedule a simple tool uses: one window of k VMs, each holding its place from upload
 * to conversion end.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { lowerBound } from '../client/forecast/bound';
import type { BenchFleet } from './fleet-env';
import { sharedBenchFleet } from './fleet-env';
import type { BenchContext, BenchResult } from './types';

const MiB = 1024 * 1024;

/** A RAW image of `mib` MiB of random bytes (the whole disk is uploaded). */
async function rawImage(fleet: BenchFleet, mib: number): Promise<string> {
  const file = path.join(fleet.dir, `makespan-${mib}.raw`);
  const handle = await open(file, 'w');
  try {
    const block = randomBytes(MiB);
    block[510] = 0x55;
    block[511] = 0xaa;
    for (let i = 0; i < mib; i++) await handle.write(block, 0, MiB, i * MiB);
  } finally {
    await handle.close();
  }
  return file;
}

export async function makespanBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const vms = ctx.quick ? 16 : 200;
  /** Mixed sizes, MiB (weights repeat in this order). */
  const mix = ctx.quick ? [2, 4, 8, 4] : [4, 8, 16, 32, 8, 16];
  const uplink = (ctx.quick ? 12 : 24) * MiB;
  const convert = 1 * MiB;
  const slots = 5;
  // Time is compressed: a real conversion takes tens of minutes, here seconds, so the first poll comes
  // after 1 s instead of 5 s (the rest of the schedule as in production).
  const settings = { pollInitialSeconds: 1 };
  const fleet = await sharedBenchFleet(ctx.log);
  const images = new Map<number, string>();
  for (const mib of new Set(mix)) images.set(mib, await rawImage(fleet, mib));
  const sizesMiB = Array.from({ length: vms }, (_, i) => mix[i % mix.length]!);
  const csv = await fleet.writeCsv('makespan.csv', [
    // Random-byte images are no guest: inspection=skip (the look inside a guest has its own benchmark).
    'name,image,architecture,instance_type,inspection',
    ...sizesMiB.map((mib, i) => `vm-${String(i + 1).padStart(4, '0')},${images.get(mib)},x86_64,t2.micro,skip`),
  ]);
  const bound = lowerBound(
    sizesMiB.map((m) => m * MiB),
    uplink,
    convert,
    slots
  );
  ctx.log(
    `${vms} VMs, ${sizesMiB.reduce((a, b) => a + b, 0)} MiB; lower bound ${bound.seconds.toFixed(0)} s (uploads ${bound.uploadBound.toFixed(0)} s, conversions ${bound.conversionBound.toFixed(0)} s)`
  );

  const run = async (
    label: string,
    limits: { maxUploads: number; maxConversions: number; maxInFlight?: number }
  ): Promise<number> => {
    await fleet.resetSim({
      speed: { conversionBytesPerSecond: convert, minConversionSeconds: 0, stepSeconds: 0.25, pendingPollMs: 100 },
      limits: { maxActiveConversions: slots },
    });
    await fleet.restartWorker({ uploadBytesPerSecond: uplink });
    const batch = `makespan-${label}-${Date.now().toString(36)}`;
    const t0 = Date.now();
    await fleet.start(csv, { batch, ...limits, settings });
    const seconds = await fleet.waitClosed(batch, t0, 2 * 60 * 60_000);
    ctx.log(`${label}: ${seconds.toFixed(1)} s = ${(seconds / bound.seconds).toFixed(3)} × the bound`);
    return seconds;
  };
  const ours = await run('vmconvoy', { maxUploads: 4, maxConversions: slots });
  const naive = await run('naive', { maxUploads: slots, maxConversions: slots, maxInFlight: slots });
  return {
    name: 'makespan',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: { vms, sizesMiB: mix, uplinkMiBps: uplink / MiB, conversionMiBps: convert / MiB, slots, settings },
    figures: [
      { label: 'lower bound', value: bound.seconds, unit: 's' },
      { label: 'vmconvoy makespan', value: ours, unit: 's' },
      {
        label: 'vmconvoy / lower bound',
        value: ours / bound.seconds,
        unit: '×',
        goal: '<= 1.10×',
        met: ours / bound.seconds <= 1.1,
      },
      { label: 'naive schedule (one window of 5) makespan', value: naive, unit: 's' },
      { label: 'naive / lower bound', value: naive / bound.seconds, unit: '×' },
    ],
    notes: [
      `LB = max(Σu + min c, min u + Σc/k, max(u+c)) with u = size/B, c = size/r: uploads alone ${bound.uploadBound.toFixed(0)} s, conversions alone ${bound.conversionBound.toFixed(0)} s, longest VM ${bound.longestVm.toFixed(0)} s. B = ${uplink / MiB} MiB/s (proxy in front of S3), r = ${convert / MiB} MiB/s per conversion, k = ${slots}.`,
      'vmconvoy: 4 uploads at once, 5 conversions (the account+region quota), up to 14 VMs in flight; naive: 5 VMs in flight, each holding its place from pre-flight to validation.',
      'Time is compressed (conversions of seconds, not tens of minutes); the first conversion poll is scaled down to 1 s to match, the rest of the poll schedule is production’s.',
    ],
  };
}
