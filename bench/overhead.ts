/**
 * overhead: what vmconvoy costs beyond the work itself. Many tiny VMs (1 MiB images) with instant
 * conversions and EC2 limits out of the way, through the real fleet, worker, S3 server and simulator;
 * then, on the same server in the same run, the baseline (bench/baseline): the same number of workflows in
 * the same window, each making as many activity calls as a vmconvoy VM made, to activities that do nothing.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { envVarsFor } from '../dev/local-env';
import { REPO_ROOT } from '../dev/services';
import { DEFAULT_SETTINGS } from '../common/contracts/migration';
import { spawnService } from '../dev/process';
import type { BenchFleet } from './fleet-env';
import { sharedBenchFleet } from './fleet-env';
import type { BenchContext, BenchResult } from './types';
import type { CpuSeconds } from './util';
import { cpuSince, formatCpu, processCpu, sleep } from './util';

const MiB = 1024 * 1024;

/** Conversions that finish as soon as EC2 has read the manifest, and no EC2 limit in the way. */
export const INSTANT_SIM = {
  speed: {
    conversionBytesPerSecond: 1e12,
    minConversionSeconds: 0,
    stepSeconds: 0.05,
    pendingPollMs: 25,
    instanceTransitionSeconds: 0,
    cancelSeconds: 0,
  },
  limits: {
    maxActiveConversions: 1_000_000,
    mutatingBurst: 1e6,
    mutatingRefillPerSecond: 1e6,
    describeBurst: 1e6,
    describeRefillPerSecond: 1e6,
  },
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
  return [
    'name,image,architecture,instance_type',
    ...Array.from({ length: vms }, (_, i) => `${prefix}-${String(i + 1).padStart(5, '0')},${image},x86_64,t2.micro`),
  ];
}

/**
 * The inventory with `inspection=skip` on every row: random-byte images are no guest, and validate would refuse
 * them all (the look inside a guest has its own benchmark, `inspection`).
 */
export function withInspectionSkipped(lines: string[]): string[] {
  return [`${lines[0]},inspection`, ...lines.slice(1).map((row) => `${row},skip`)];
}

/** Activity calls (scheduled events) and all events of a sample of the batch's VM histories. */
async function historyFigures(
  fleet: BenchFleet,
  batch: string,
  sample: number
): Promise<{ activities: number; events: number; signals: number; timers: number }> {
  let n = 0;
  const sum = { activities: 0, events: 0, signals: 0, timers: 0 };
  for await (const wf of fleet.client.workflow.list({
    query: `MigrationBatch = "${batch}" AND WorkflowType = "migrateVmWorkflow"`,
    pageSize: sample,
  })) {
    const history = await fleet.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      sum.events += 1;
      if (e.activityTaskScheduledEventAttributes) sum.activities += 1;
      if (e.signalExternalWorkflowExecutionInitiatedEventAttributes || e.workflowExecutionSignaledEventAttributes)
        sum.signals += 1;
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
  const csv = await fleet.writeCsv('overhead.csv', withInspectionSkipped(tinyInventory(image, vms)));
  const batch = `overhead-${Date.now().toString(36)}`;

  const cpu0 = await processCpu(fleet.local, fleet.local.workerProcess?.child.pid);
  const t0 = Date.now();
  await fleet.start(csv, { batch, ...limits });
  const seconds = await fleet.waitClosed(batch, t0, 60 * 60_000);
  const cpu = cpuSince(cpu0, await processCpu(fleet.local, fleet.local.workerProcess?.child.pid));
  ctx.log(`vmconvoy CPU-s: ${formatCpu(cpu)}`);
  const perMinute = (vms / seconds) * 60;
  ctx.log(`vmconvoy: ${vms} VMs in ${seconds.toFixed(1)} s (${perMinute.toFixed(0)} VMs/min)`);
  const workerRss = await fleet.workerPeakRss();
  const history = await historyFigures(fleet, batch, 20);
  const activitiesPerVm = Math.round(history.activities);
  ctx.log(
    `a VM's history: ${history.events.toFixed(0)} events, ${history.activities.toFixed(1)} activity calls, ${history.signals.toFixed(1)} signals, ${history.timers.toFixed(1)} timers`
  );

  // The baselines, on the same server, with vmconvoy's worker stopped (nothing else competes for the CPUs).
  await fleet.local.worker()?.stop();
  const runBaseline = async (sameWork: boolean): Promise<{ seconds: number; cpu: CpuSeconds }> => {
    const taskQueue = `baseline-${sameWork ? 'work-' : ''}${Date.now().toString(36)}`;
    const worker = await spawnService({
      name: 'baseline-worker',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        path.join(REPO_ROOT, 'bench', 'baseline', 'worker.ts'),
        fleet.local.info.temporalAddress,
        taskQueue,
        ...(sameWork ? ['--same-work'] : []),
      ],
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...envVarsFor(fleet.local.info),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      readyWhen: (line) => line.includes('baseline worker started'),
      readyTimeoutMs: 120_000,
    });
    try {
      await sleep(1000);
      const before = await processCpu(fleet.local, worker.child.pid);
      const b0 = Date.now();
      const spec = {
        name: 'same-work',
        image,
        architecture: 'x86_64' as const,
        instanceType: 't2.micro',
        securityGroups: [],
        monitoring: false,
        shutdownBehavior: 'stop' as const,
        wave: 1,
        tags: {},
        bootCheck: false,
        // A random-byte image is no guest: as on vmconvoy's rows (withInspectionSkipped), pre-flight must not judge it.
        inspection: 'skip' as const,
      };
      const handle = await fleet.client.workflow.start('baselineFleetWorkflow', {
        taskQueue,
        workflowId: taskQueue,
        args: [
          {
            prefix: taskQueue,
            total: vms,
            window,
            activitiesPerVm,
            ...(sameWork ? { sameWork: { spec, settings: DEFAULT_SETTINGS } } : {}),
          },
        ],
      });
      await handle.result();
      const seconds = (Date.now() - b0) / 1000;
      return { seconds, cpu: cpuSince(before, await processCpu(fleet.local, worker.child.pid)) };
    } finally {
      await worker.stop();
    }
  };
  const bare = await runBaseline(false);
  const baselineSeconds = bare.seconds;
  ctx.log(
    `baseline: ${vms} workflows × ${activitiesPerVm} no-op activities in ${baselineSeconds.toFixed(1)} s; CPU-s ${formatCpu(bare.cpu)}`
  );
  const sameWork = await runBaseline(true);
  ctx.log(
    `same-work baseline: ${vms} workflows calling vmconvoy's activities in order in ${sameWork.seconds.toFixed(1)} s; CPU-s ${formatCpu(sameWork.cpu)}`
  );
  const ratio = seconds / baselineSeconds;
  const workRatio = seconds / sameWork.seconds;
  const perVm = (c: CpuSeconds): number => (Object.values(c).reduce((a, b) => a + b, 0) / vms) * 1000;
  const breakdown = (c: CpuSeconds): string =>
    Object.entries(c)
      .map(([k, v]) => `${k} ${((v / vms) * 1000).toFixed(0)}`)
      .join(', ');
  return {
    name: 'overhead',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: { vms, imageMiB: 1, ...limits, window, sim: INSTANT_SIM },
    figures: [
      { label: `vmconvoy: ${vms} tiny VMs, instant conversions`, value: seconds, unit: 's' },
      { label: 'vmconvoy throughput', value: perMinute, unit: 'VMs/min' },
      {
        label: `same work: ${vms} workflows calling the same ${activitiesPerVm} activities, no orchestration`,
        value: sameWork.seconds,
        unit: 's',
      },
      {
        label: 'vmconvoy time / same-work time (orchestration overhead)',
        value: workRatio,
        unit: '×',
        goal: '<= 1.5×',
        met: workRatio <= 1.5,
      },
      { label: `bare: ${vms} workflows × ${activitiesPerVm} no-op activities`, value: baselineSeconds, unit: 's' },
      { label: 'vmconvoy time / bare time', value: ratio, unit: '×', goal: '<= 1.5× (see notes)', met: ratio <= 1.5 },
      { label: 'CPU per VM: vmconvoy', value: perVm(cpu), unit: 'ms' },
      { label: 'CPU per VM: same work', value: perVm(sameWork.cpu), unit: 'ms' },
      { label: 'CPU per VM: bare', value: perVm(bare.cpu), unit: 'ms' },
      { label: 'events per VM history', value: history.events, unit: 'events' },
      { label: 'worker peak RSS', value: (workerRss ?? 0) / MiB, unit: 'MiB' },
    ],
    notes: [
      `All three runs use the same Temporal dev server (SQLite), S3 server and simulator, one worker process each, ${window} VMs in flight; the simulator converts instantly and its token buckets and quota are lifted. vmconvoy does pre-flight, a real 1 MiB upload, the manifest with presigned URLs, the conversion slot, ImportInstance, describe, validation and cleanup, with the fleet's window, the account's conversion quota, status and search attributes.`,
      `A vmconvoy VM made ${history.activities.toFixed(1)} activity calls on average (${history.signals.toFixed(1)} signals, ${history.timers.toFixed(1)} timers, ${history.events.toFixed(0)} history events). The same-work baseline makes the same activity calls, so it does the same work (S3, EC2 simulator, SDK), with none of the orchestration; the bare baseline makes as many calls to an activity that returns at once.`,
      `CPU per VM in ms by process: vmconvoy ${breakdown(cpu)}; same work ${breakdown(sameWork.cpu)}; bare ${breakdown(bare.cpu)}. Every process shares the machine's cores, so wall time follows total CPU.`,
    ],
  };
}
