/**
 * api-efficiency: DescribeConversionTasks calls per VM, vmconvoy's adaptive polling against a fixed 15 s
 * poll (the SDK waiter's first delay, and what scripts around ec2-import-instance did) for the same
 * conversions, under EC2's default token buckets.
 *
 * Time is compressed F = 60× (a simulated minute lasts a second): conversions of 5 to 60 simulated minutes,
 * every interval of both pollers divided by F, and the buckets' refill multiplied by F (their capacity
 * stays EC2's), so call counts and throttling are those of the real durations.
 */
import { DescribeConversionTasksCommand, EC2Client } from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createActivities } from '../activities';
import type { FleetSummary } from '../workflows/migrate-fleet';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../common/contracts/migration';
import type { BenchFleet } from './fleet-env';
import { sharedBenchFleet } from './fleet-env';
import type { BenchContext, BenchResult } from './types';
import { sleep } from './util';

const F = 60;
/** The simulator's conversion speed; an image of d × RATE bytes converts in d seconds. */
const RATE = 64 * 1024;
const FIXED_POLL_SECONDS = 15;

function simConfig(vms: number): unknown {
  return {
    speed: { conversionBytesPerSecond: RATE, minConversionSeconds: 0, stepSeconds: 1, pendingPollMs: 100 },
    // EC2's buckets (describe 100/20 per s, mutating 50/5 per s) in simulated time; the quota lifted so
    // every conversion runs at once (the quota is the makespan benchmark's subject, not this one's).
    limits: {
      maxActiveConversions: vms,
      describeBurst: 100,
      describeRefillPerSecond: 20 * F,
      mutatingBurst: 50,
      mutatingRefillPerSecond: 5 * F,
    },
  };
}

/** Conversion lengths in simulated minutes = real seconds, spread evenly. */
function durations(vms: number, longest: number): number[] {
  return Array.from({ length: vms }, (_, i) => Math.round(5 + ((longest - 5) * i) / Math.max(1, vms - 1)));
}

async function images(fleet: BenchFleet, seconds: number[]): Promise<string[]> {
  return Promise.all(
    seconds.map(async (d, i) => {
      const file = path.join(fleet.dir, `api-${i}.raw`);
      const bytes = Math.ceil((d * RATE) / 512) * 512;
      const data = randomBytes(bytes);
      data[510] = 0x55;
      data[511] = 0xaa;
      await writeFile(file, data);
      return file;
    })
  );
}

/** The same conversions, each polled every 15 s (scaled) by its own loop, as N waiters would. */
async function fixedIntervalPolling(
  fleet: BenchFleet,
  files: string[]
): Promise<{ calls: number; throttled: number; seconds: number }> {
  const { config } = fleet;
  const activities = createActivities({ config: config.aws, qemuImg: false });
  // One attempt per call: every request is counted, and an error just waits for the next poll (as the waiter does).
  const ec2 = new EC2Client({
    region: config.aws.region,
    endpoint: config.aws.ec2Endpoint,
    credentials: { accessKeyId: config.aws.accessKeyId!, secretAccessKey: config.aws.secretAccessKey! },
    maxAttempts: 1,
  });
  let calls = 0;
  let throttled = 0;
  const t0 = Date.now();
  try {
    await Promise.all(
      files.map(async (image, i) => {
        const loc = { batch: 'api-fixed', vm: `vm-${i}` };
        // A random-byte image is no guest: as on vmconvoy's rows (withInspectionSkipped), pre-flight must not judge it.
        const spec = vmSpecSchema.parse({
          name: loc.vm,
          image,
          architecture: 'x86_64',
          instanceType: 't2.micro',
          inspection: 'skip',
        });
        const pre = await activities.preflightImage({ spec });
        await activities.uploadImage({
          ...loc,
          image,
          imageBytes: pre.imageBytes,
          partSizeBytes: DEFAULT_SETTINGS.partSizeBytes,
          concurrency: 4,
        });
        const validUntil = new Date(Date.now() + 3600_000).toISOString();
        const manifest = await activities.writeManifest({
          ...loc,
          format: pre.format,
          imageBytes: pre.imageBytes,
          volumeSizeGib: pre.volumeSizeGib,
          partSizeBytes: DEFAULT_SETTINGS.partSizeBytes,
          validUntil,
        });
        const task = await activities.importInstance({
          ...loc,
          dryRun: false,
          spec,
          format: pre.format,
          imageBytes: pre.imageBytes,
          volumeSizeGib: pre.volumeSizeGib,
          manifestKey: manifest.manifestKey,
          validUntil,
        });
        for (;;) {
          await sleep((FIXED_POLL_SECONDS / F) * 1000);
          calls += 1;
          try {
            const out = await ec2.send(
              new DescribeConversionTasksCommand({ ConversionTaskIds: [task.conversionTaskId] })
            );
            if (out.ConversionTasks?.[0]?.State === 'completed') break;
          } catch (err) {
            if ((err as { name?: string }).name === 'RequestLimitExceeded') throttled += 1;
          }
        }
        await activities.cleanupVm(loc);
      })
    );
  } finally {
    ec2.destroy();
  }
  return { calls, throttled, seconds: (Date.now() - t0) / 1000 };
}

export async function apiEfficiencyBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const vms = ctx.quick ? 8 : 30;
  const seconds = durations(vms, ctx.quick ? 20 : 60);
  const fleet = await sharedBenchFleet(ctx.log);
  const files = await images(fleet, seconds);
  const csv = await fleet.writeCsv('api.csv', [
    // Random-byte images are no guest: inspection=skip (the look inside a guest has its own benchmark).
    'name,image,architecture,instance_type,inspection',
    ...files.map((f, i) => `vm-${i},${f},x86_64,t2.micro,skip`),
  ]);

  // vmconvoy, its poll schedule scaled by F.
  await fleet.resetSim(simConfig(vms));
  await fleet.restartWorker();
  const batch = `api-${Date.now().toString(36)}`;
  const settings = {
    pollInitialSeconds: DEFAULT_SETTINGS.pollInitialSeconds / F,
    pollMaxSeconds: DEFAULT_SETTINGS.pollMaxSeconds / F,
  };
  const t0 = Date.now();
  await fleet.start(csv, { batch, maxUploads: vms, maxConversions: vms, settings });
  const oursSeconds = await fleet.waitClosed(batch, t0, 30 * 60_000);
  const summary = (await fleet.client.workflow.getHandle(batch).result()) as FleetSummary;
  const ours = await fleet.simState();
  const oursCalls = ours.calls.DescribeConversionTasks ?? 0;
  const oursThrottled = Object.values(ours.throttled).reduce((a, b) => a + b, 0);
  ctx.log(
    `vmconvoy: ${oursCalls} DescribeConversionTasks for ${vms} VMs in ${oursSeconds.toFixed(0)} s; ${summary.failed} failed; ${oursThrottled} throttled`
  );

  // The fixed 15 s poller, the same conversions.
  await fleet.resetSim(simConfig(vms));
  const fixed = await fixedIntervalPolling(fleet, files);
  ctx.log(
    `fixed 15 s: ${fixed.calls} DescribeConversionTasks in ${fixed.seconds.toFixed(0)} s; ${fixed.throttled} throttled`
  );

  const oursPerVm = oursCalls / vms;
  const fixedPerVm = fixed.calls / vms;
  return {
    name: 'api-efficiency',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: { vms, compression: F, conversionMinutes: seconds, settings, fixedPollSeconds: FIXED_POLL_SECONDS },
    figures: [
      { label: 'vmconvoy DescribeConversionTasks per VM', value: oursPerVm, unit: 'calls' },
      { label: 'fixed 15 s polling per VM', value: fixedPerVm, unit: 'calls' },
      {
        label: 'fixed / vmconvoy',
        value: fixedPerVm / oursPerVm,
        unit: '×',
        goal: '>= 4×',
        met: fixedPerVm / oursPerVm >= 4,
      },
      {
        label: 'vmconvoy VMs failed',
        value: summary.failed,
        unit: 'VMs',
        goal: '0 (none failed by throttling)',
        met: summary.failed === 0 && summary.completed === vms,
      },
      { label: 'vmconvoy calls refused by the token buckets', value: oursThrottled, unit: 'calls' },
      { label: 'fixed poller calls refused by the token buckets', value: fixed.throttled, unit: 'calls' },
    ],
    notes: [
      `${vms} conversions of ${seconds[0]} to ${seconds[seconds.length - 1]} simulated minutes, all at once; time compressed ${F}× (intervals ÷ ${F}, bucket refill × ${F}).`,
      'vmconvoy’s count includes the DescribeConversionTasks each ImportInstance makes first to find a task an earlier attempt created (the idempotency lookup); the fixed poller’s does not.',
      'The fixed poller is what scripts around ec2-import-instance did; the SDK waiter waitUntilConversionTaskCompleted starts at 15 s and backs off with jitter up to 120 s.',
    ],
  };
}
