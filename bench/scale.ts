/**
 * scale: a 10,000-row inventory through the real binary and the real fleet (the 1,000 tiny-VM shape of the
 * overhead benchmark, ten times over, in two waves): time to validate and to start, the run itself, the
 * worker's peak memory, the longest history of any workflow, and the largest payload any history holds,
 * every history read back and every payload measured.
 */
import path from 'node:path';
// The simulator's own key belongs to its default account: the local batch's quota is that account's (issue 20).
import { DEFAULT_ACCOUNT_ID } from '../sim/config';
import { quotaWorkflowId } from '../common/workflow-ids';
import { envVarsFor } from '../dev/local-env';
import { baseEnv, runCli } from '../test/e2e/run-cli';
import { sharedBenchFleet } from './fleet-env';
import { ControlProfiler, describeProfile } from './history-profile';
import { INSTANT_SIM, tinyImage } from './overhead';
import type { BenchContext, BenchResult } from './types';
import { cpuSince, formatCpu, processCpu } from './util';

const MiB = 1024 * 1024;
const KB = 1024;

/** The largest Payload (data + metadata bytes) anywhere in a history. */
export function largestPayload(value: unknown): number {
  let max = 0;
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    const o = v as Record<string, unknown>;
    if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') {
      let size = o.data.length;
      for (const [k, m] of Object.entries(o.metadata as Record<string, unknown>))
        size += k.length + (m instanceof Uint8Array ? m.length : 0);
      max = Math.max(max, size);
      return;
    }
    for (const x of Object.values(o)) walk(x);
  };
  walk(value);
  return max;
}

export async function scaleBenchmark(ctx: BenchContext): Promise<BenchResult> {
  // VMCONVOY_SCALE_ROWS: a size between the two, for profiling and before/after comparisons (bench/README).
  const rows = Number(process.env.VMCONVOY_SCALE_ROWS ?? '') || (ctx.quick ? 200 : 10_000);
  if (!Number.isInteger(rows) || rows < 2) throw new Error(`VMCONVOY_SCALE_ROWS must be a whole number of at least 2`);
  const fleet = await sharedBenchFleet(ctx.log);
  await fleet.resetSim(INSTANT_SIM);
  await fleet.restartWorker();
  // Ten distinct images: validation pre-flights each once, whatever the row count.
  const images = await Promise.all(Array.from({ length: 10 }, (_, i) => tinyImage(fleet, `scale-${i}.raw`)));
  const csv = await fleet.writeCsv('scale.csv', [
    // Random bytes are no guest: inspection=skip, as every random-image row (test/helpers/images.ts).
    'name,image,architecture,instance_type,wave,tags,inspection',
    ...Array.from(
      { length: rows },
      (_, i) =>
        `vm-${String(i + 1).padStart(5, '0')},${images[i % images.length]},x86_64,t2.micro,${i < rows / 2 ? 1 : 2},app=scale;row=${i + 1},skip`
    ),
  ]);
  const env = baseEnv({ ...envVarsFor(fleet.local.info), VMCONVOY_ENV_FILE: path.join(fleet.dir, 'none.json') });
  const batch = `scale-${Date.now().toString(36)}`;

  let t = performance.now();
  const validate = await runCli(['validate', csv], env, fleet.dir);
  const validateSeconds = (performance.now() - t) / 1000;
  if (validate.code !== 0)
    throw new Error(`vmconvoy validate exited ${validate.code}: ${validate.stdout}${validate.stderr}`);
  ctx.log(`validate: ${rows} rows in ${validateSeconds.toFixed(1)} s`);

  t = performance.now();
  const cpu0 = await processCpu(fleet.local, fleet.local.workerProcess?.child.pid);
  const started = Date.now();
  const start = await runCli(
    ['start', csv, '--batch', batch, '--max-uploads', '50', '--max-conversions', '50'],
    env,
    fleet.dir
  );
  const startSeconds = (performance.now() - t) / 1000;
  if (start.code !== 0) throw new Error(`vmconvoy start exited ${start.code}: ${start.stdout}${start.stderr}`);
  ctx.log(`start: ${startSeconds.toFixed(1)} s`);

  const runSeconds = await fleet.waitClosed(batch, started, 4 * 60 * 60_000);
  const cpu = cpuSince(cpu0, await processCpu(fleet.local, fleet.local.workerProcess?.child.pid));
  const workerRss = (await fleet.workerPeakRss()) ?? 0;
  ctx.log(`run: ${rows} VMs in ${runSeconds.toFixed(0)} s; worker peak RSS ${(workerRss / MiB).toFixed(0)} MiB`);
  ctx.log(`CPU-s: ${formatCpu(cpu)}`);
  const cpuPerVm = (Object.values(cpu).reduce((a, b) => a + b, 0) / rows) * 1000;

  // Every workflow of the batch (the fleet's runs, every VM) and the quota workflow: history lengths from
  // visibility, then every history read and every payload measured.
  const quotaId = quotaWorkflowId(DEFAULT_ACCOUNT_ID, fleet.local.info.region);
  const runs: Array<{ workflowId: string; runId: string; type: string; historyLength: number }> = [];
  for (const query of [`MigrationBatch = "${batch}"`, `WorkflowId = "${quotaId}"`]) {
    for await (const wf of fleet.client.workflow.list({ query })) {
      // The quota's runs from before this batch (an earlier benchmark in the same environment) are not its.
      if (wf.type === 'conversionQuotaWorkflow' && wf.startTime.getTime() < started - 1000) continue;
      runs.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type, historyLength: wf.historyLength });
    }
  }
  // The VMs too: their own workflow tasks are most of the orchestration work (issue 21), and the signals
  // they send from workflow code each cost one.
  const profilers = { fleet: new ControlProfiler(), quota: new ControlProfiler(), vm: new ControlProfiler() };
  const longest = runs.reduce((a, b) => (b.historyLength > a.historyLength ? b : a));
  const fleetRuns = runs.filter((r) => r.type === 'migrateFleetWorkflow').length;
  const scanStarted = performance.now();
  let maxPayload = 0;
  let maxPayloadWhere = '';
  let next = 0;
  const lane = async (): Promise<void> => {
    for (;;) {
      const run = runs[next++];
      if (!run) return;
      const history = await fleet.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      if (run.type === 'migrateFleetWorkflow') profilers.fleet.add(history);
      if (run.type === 'conversionQuotaWorkflow') profilers.quota.add(history);
      if (run.type === 'migrateVmWorkflow') profilers.vm.add(history);
      const size = largestPayload(history);
      if (size > maxPayload) {
        maxPayload = size;
        maxPayloadWhere = `${run.type} ${run.workflowId}`;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  ctx.log(
    `read ${runs.length} histories in ${((performance.now() - scanStarted) / 1000).toFixed(0)} s; largest payload ${(maxPayload / KB).toFixed(1)} KiB (${maxPayloadWhere}); longest history ${longest.historyLength} events (${longest.type})`
  );

  const fleetProfile = profilers.fleet.profile();
  const quotaProfile = profilers.quota.profile();
  const fleetLine = describeProfile('fleet', fleetProfile, rows);
  const quotaLine = describeProfile('quota', quotaProfile, rows);
  const vmProfile = profilers.vm.profile();
  const vmLine = describeProfile('VMs', vmProfile, rows);
  ctx.log(fleetLine);
  ctx.log(quotaLine);
  ctx.log(vmLine);

  return {
    name: 'scale',
    finishedAt: new Date().toISOString(),
    quick: ctx.quick,
    parameters: {
      rows,
      waves: 2,
      distinctImages: images.length,
      imageMiB: 1,
      maxUploads: 50,
      maxConversions: 50,
      sim: INSTANT_SIM,
    },
    figures: [
      { label: `vmconvoy validate, ${rows} rows`, value: validateSeconds, unit: 's' },
      { label: `vmconvoy start, ${rows} rows`, value: startSeconds, unit: 's' },
      { label: `${rows} VMs through the fleet (instant conversions)`, value: runSeconds, unit: 's' },
      { label: 'throughput', value: (rows / runSeconds) * 60, unit: 'VMs/min' },
      { label: 'worker peak RSS', value: workerRss / MiB, unit: 'MiB' },
      {
        label: `longest history (${longest.type})`,
        value: longest.historyLength,
        unit: 'events',
        goal: '< 10,240 (Temporal warns)',
        met: longest.historyLength < 10_240,
      },
      { label: 'fleet workflow runs (continue-as-new)', value: fleetRuns, unit: 'runs' },
      { label: 'CPU per VM, all processes', value: cpuPerVm, unit: 'ms' },
      { label: 'fleet workflow tasks per VM', value: fleetProfile.workflowTasks / rows, unit: 'tasks' },
      { label: 'fleet: signal to handled, mean', value: fleetProfile.signalMsMean, unit: 'ms' },
      { label: 'quota workflow tasks per VM', value: quotaProfile.workflowTasks / rows, unit: 'tasks' },
      { label: 'quota: signal to handled, mean', value: quotaProfile.signalMsMean, unit: 'ms' },
      { label: 'VM workflow tasks per VM', value: vmProfile.workflowTasks / rows, unit: 'tasks' },
      { label: 'signals a VM sends (from workflow code)', value: vmProfile.signalsSent / rows, unit: 'signals' },
      {
        label: `largest payload in ${runs.length} histories`,
        value: maxPayload / KB,
        unit: 'KiB',
        goal: '< 256 KiB',
        met: maxPayload < 256 * KB,
      },
    ],
    notes: [
      `Every history of the batch and of the conversion-quota workflow was read back (${runs.length} runs) and every payload in it measured; the largest was in ${maxPayloadWhere}.`,
      'The inventory never travels as a payload: `start` stores it in pages of 100 rows in S3 and the fleet loads one page at a time.',
      'The simulator converts instantly and its limits are lifted (as in the overhead benchmark), so the run measures vmconvoy and Temporal, not EC2.',
      `CPU-s by process: ${formatCpu(cpu)}.`,
      `From their histories: ${fleetLine}; ${quotaLine}; ${vmLine}.`,
    ],
  };
}
