/**
 * overhead: what vmconvoy costs beyond the work itself. Many tiny VMs (1 MiB images) with instant
 * conversions and EC2 limits out of the way, through the real fleet, worker, S3 server and simulator;
 * then, on the same server in the same run, the baseline (bench/baseline): the same number of workflows in
 * the same window, each making as many activity calls as a vmconvoy VM made, to activities that do nothing.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../dev/services';
import { spawnService } from '../dev/process';
import type { BenchFleet } from './fleet-env';
import { sharedBenchFleet } from './fleet-env';
import type { BenchContext, BenchResult } from './types';
import { sleep } from './util';

const MiB = 1024 * 1024;

/** Conversions that finish as soon as EC2 has read the manifest, and no EC2 limit in the way. */
export const INSTANT_SIM = {
  speed: { conversionBytesPerSecond: 1e12, minConversionSeconds: 0, stepSeconds: 0.05, pendingPollMs: 25, instanceTransitionSeconds: 0, cancelSeconds: 0 },
  limits: { maxActiveConversions: 1_000_000, mutatingBurst: 1e6, mutatingRefillPerSecond: 1e6, describeBurst: 1e6, describeRefillPerSecond: 1e6 },
};

/** A 1 MiB RAW image (random bytes, MBR signature) for tiny VMs. */
export async function tinyImage(fleet: BenchFleet, name = 'tiny.raw'): Promise<string> {
  const file = path.join(fleet.dir, name);
  const data = randomBytes(MiB);
  data[510] = 0x55;
  data[511] = 0xaa;
  await writeFile(file, data);
  return file;
}

export function tinyInventory(image: string, vms: number, prefix = 'vm'): string[] {
  return ['name,image,architecture,instance_type', ...Array.from({ length: vms }, (_, i) => `${prefix}-${String(i + 1).padStart(5, '0')},${image},x86_64,t2.micro`)];
}

/** Activity calls (scheduled events) and all events of a sample of the batch's VM histories. */
async function historyFigures(fleet: BenchFleet, batch: string, sample: number): Promise<{ activities: number; events: number; signals: number; timers: number }> {
  let n = 0;
  const sum = { activities: 0, events: 0, signals: 0, timers: 0 };
  for await (const wf of fleet.client.workflow.list({ query: `MigrationBatch = "${batch}" AND WorkflowType = "migrateVmWorkflow"`, pageSize: sample })) {
    const history = await fleet.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      sum.events += 1;
      if (e.activityTaskScheduledEventAttributes) sum.activities += 1;
      if (e.signalExternalWorkflowExecutionInitiatedEventAttributes || e.workflowExecutionSignaledEventAttributes) sum.signals += 1;
      if (e.timerStartedEventAttributes) sum.timers += 1;
    }
    if (++n >= sample) break;
  }
  return { activities: sum.activities / n, events: sum.events / n, signals: sum.signals / n, timers: sum.timers / n };
}

export async function overheadBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const vms = ctx.quick ? 100 : 1000;
  const limits = { maxUploads: 50, maxConversions: 50 };
  const window = limits.maxUploads + 2 * limits.maxConversions;
  const fleet = await sharedBenchFleet(ctx.log);
  await fleet.resetSim(INSTANT_SIM);
  await fleet.restartWorker();
  const image = await tinyImage(fleet);
  const csv = await fleet.writeCsv('overhead.csv', tinyInventory(image, vms));
  const batch = `overhead-${Date.now().toString(36)}`;

  const t0 = Date.now();
  await fleet.start(csv, { batch, ...limits });
  const seconds = await fleet.waitClosed(batch, t0, 60 * 60_000);
  const perMinute = (vms / seconds) * 60;
  ctx.log(`vmconvoy: ${vms} VMs in ${seconds.toFixed(1)} s (${perMinute.toFixed(0)} VMs/min)`);
  const workerRss = await fleet.workerPeakRss();
  const history = await historyFigures(fleet, batch, 20);
  const activitiesPerVm = Math.round(history.activities);
  ctx.log(`a VM's history: ${history.events.toFixed(0)} events, ${history.activities.toFixed(1)} activity calls, ${history.signals.toFixed(1)} signals, ${history.timers.toFixed(1)} timers`);

  // The baseline, on the same server, with vmconvoy's worker stopped (nothing else competes for the CPUs).
  await fleet.local.worker()?.stop();
  const taskQueue = `baseline-${Date.now().toString(36)}`;
  const baselineWorker = await spawnService({
    name: 'baseline-worker',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'baseline', 'worker.ts'), fleet.local.info.temporalAddress, taskQueue],
    cwd: REPO_ROOT,
    readyWhen: (line) => line.includes('baseline worker started'),
    readyTimeoutMs: 120_000,
  });
  let baselineSeconds: number;
  try {
    await sleep(1000);
    const b0 = Date.now();
    const handle = await fleet.client.workflow.start('baselineFleetWorkflow', {
      taskQueue,
      workflowId: taskQueue,
      args: [{ prefix: taskQueue, total: vms, window, activitiesPerVm }],
    });
    await handle.result();
    baselineSeconds = (Date.now() - b0) / 1000;
  } finally {
    await baselineWorker.stop();
  }
  ctx.log(`baseline: ${vms} workflows × ${activitiesPerVm} no-op activities in ${baselineSeconds.toFixed(1)} s`);
  const ratio = seconds / baselineSeconds;
  return {
    name: 'overhead',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: { vms, imageMiB: 1, ...limits, window, sim: INSTANT_SIM },
    figures: [
      { label: `vmconvoy: ${vms} tiny VMs, instant conversions`, value: seconds, unit: 's' },
      { label: 'vmconvoy throughput', value: perMinute, unit: 'VMs/min' },
      { label: `baseline: ${vms} workflows × ${activitiesPerVm} no-op activities`, value: baselineSeconds, unit: 's' },
      { label: 'baseline throughput', value: (vms / baselineSeconds) * 60, unit: 'VMs/min' },
      { label: 'vmconvoy time / baseline time', value: ratio, unit: '×', goal: '<= 1.5×', met: ratio <= 1.5 },
      { label: 'events per VM history', value: history.events, unit: 'events' },
      { label: 'worker peak RSS', value: (workerRss ?? 0) / MiB, unit: 'MiB' },
    ],
    notes: [
      `Both runs use the same Temporal dev server (SQLite) and one worker process each, with ${window} VMs in flight; the simulator converts instantly and its token buckets and quota are lifted, so only vmconvoy's own work remains: pre-flight, a real 1 MiB upload, manifest with presigned URLs, the conversion slot, ImportInstance with its idempotency lookup, describe, validation, cleanup.`,
      `A vmconvoy VM made ${history.activities.toFixed(1)} activity calls on average (${history.signals.toFixed(1)} signals, ${history.timers.toFixed(1)} timers, ${history.events.toFixed(0)} history events); the baseline child makes ${activitiesPerVm} calls to an activity that returns at once.`,
    ],
  };
}
