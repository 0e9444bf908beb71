/**
 * cluster: the overhead benchmark's tiny VMs (1 MiB images, instant conversions, EC2 limits lifted) on the
 * production topology (dev/cluster.ts: PostgreSQL, the frontend, history, matching and internal-worker
 * services as separate processes), once with one shared vmconvoy worker and once with two. Per run: VMs per
 * minute; CPU seconds per VM of every process (each Temporal service, PostgreSQL with its backends, each
 * worker), read from /proc before and after; and the task latency of the two workflows that act for every
 * VM, the fleet and the conversion quota, from their histories (WorkflowTaskScheduled → Started: waiting
 * for a worker; Started → Completed: the worker's turn), early in the run against late in it.
 */
import { temporal as proto } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { quotaWorkflowId } from '../common/workflow-ids';
import { DEFAULT_ACCOUNT_ID } from '../sim/config';
import { runCli } from '../test/e2e/run-cli';
import { tempDir } from '../test/helpers/testbed';
import type { ClusterBed } from '../test/cluster/bed';
import { startClusterBed } from '../test/cluster/bed';
import { INSTANT_SIM, tinyInventory, withInspectionSkipped } from './overhead';
import type { BenchContext, BenchFigure, BenchResult } from './types';
import { median, sleep } from './util';

const EventType = proto.api.enums.v1.EventType;
const TICKS = 100; // clock ticks per second in /proc/<pid>/stat (USER_HZ)

/** utime+stime of one process, and (with `reaped`) of its exited children it waited for. */
async function statOf(pid: number): Promise<{ ppid: number; own: number; reaped: number } | undefined> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    // After the command: state ppid ... utime(12th) stime(13th) cutime(14th) cstime(15th).
    return {
      ppid: Number(fields[1]),
      own: (Number(fields[11]) + Number(fields[12])) / TICKS,
      reaped: (Number(fields[13]) + Number(fields[14])) / TICKS,
    };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process, and for PostgreSQL of its whole tree: every connection is a backend process
 * forked by the postmaster, so the postmaster's own time is a small part. Live children count their own
 * time; exited ones are in the postmaster's cutime/cstime once reaped.
 */
async function cpuOf(pid: number | undefined, tree: boolean): Promise<number> {
  if (pid === undefined) return 0;
  const root = await statOf(pid);
  if (!root) return 0;
  if (!tree) return root.own;
  let sum = root.own + root.reaped;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await statOf(Number(entry));
    if (s && s.ppid === pid) sum += s.own;
  }
  return sum;
}

async function clusterCpu(bed: ClusterBed): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [service, pid] of Object.entries(bed.cluster.pids())) {
    if (service === 'ui') continue;
    out[service === 'worker' ? 'temporal-worker' : service] = await cpuOf(pid, service === 'postgres');
  }
  for (const w of bed.workers.values()) out[w.name] = await cpuOf(w.process.child.pid, false);
  return out;
}

interface Latency {
  tasks: number;
  /** Median and 95th percentile, ms, over the run; and the median of the first and the last quarter. */
  toStart: { median: number; p95: number; early: number; late: number };
  toComplete: { median: number; p95: number; early: number; late: number };
}

const p95 = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0;
};

/** Workflow task latencies of every run of `workflowId` in the window [from, to]. */
async function taskLatency(client: Client, workflowId: string, from: number, to: number): Promise<Latency> {
  const tasks: Array<{ at: number; toStart: number; toComplete: number }> = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    let scheduled: number | undefined;
    let startedAt: number | undefined;
    const ms = (e: proto.api.history.v1.IHistoryEvent): number =>
      Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    for (const e of history.events ?? []) {
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) scheduled = ms(e);
      else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) startedAt = ms(e);
      else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && scheduled && startedAt) {
        if (scheduled >= from && scheduled <= to)
          tasks.push({ at: scheduled, toStart: startedAt - scheduled, toComplete: ms(e) - startedAt });
        scheduled = startedAt = undefined;
      }
    }
  }
  tasks.sort((a, b) => a.at - b.at);
  const quarter = Math.max(1, Math.floor(tasks.length / 4));
  const summary = (pick: (t: (typeof tasks)[number]) => number): Latency['toStart'] => ({
    median: median(tasks.map(pick)) || 0,
    p95: p95(tasks.map(pick)),
    early: median(tasks.slice(0, quarter).map(pick)) || 0,
    late: median(tasks.slice(-quarter).map(pick)) || 0,
  });
  return { tasks: tasks.length, toStart: summary((t) => t.toStart), toComplete: summary((t) => t.toComplete) };
}

interface RunFigures {
  workers: number;
  seconds: number;
  perMinute: number;
  /** CPU seconds by process over the run. */
  cpu: Record<string, number>;
  fleet: Latency;
  quota: Latency;
}

export async function clusterBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const vms = ctx.quick ? 100 : 1000;
  const limits = { maxUploads: 50, maxConversions: 50 };
  const dir = await tempDir('vmconvoy-bench-cluster-');
  let bed: ClusterBed | undefined;
  try {
    bed = await startClusterBed({ dir: dir.dir, sites: [], simConfig: INSTANT_SIM, log: ctx.log });
    const env = { ...bed.env, VMCONVOY_IMAGE_ROOTS: dir.dir };
    const setup = await runCli(['setup', '--json'], env, dir.dir);
    if (setup.code !== 0) throw new Error(`vmconvoy setup: ${setup.stderr}`);
    for (const deadline = Date.now() + 60_000; ; await sleep(500)) {
      try {
        await bed.client.workflow.count('MigrationBatch = "probe"');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
    const image = path.join(dir.dir, 'tiny.raw');
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
    data[510] = 0x55;
    data[511] = 0xaa;
    await writeFile(image, data);
    // The simulator's own key belongs to its default account: the batch's quota is that account's (issue 20).
    const quotaId = quotaWorkflowId(DEFAULT_ACCOUNT_ID, bed.s3.region);

    const runs: RunFigures[] = [];
    for (const workers of [1, 2]) {
      while (bed.workers.size < workers)
        await bed.startWorker(`shared-${bed.workers.size + 1}`, { site: undefined, imageRoot: dir.dir });
      const lines = withInspectionSkipped(tinyInventory(image, vms, `w${workers}`));
      const csv = path.join(dir.dir, `cluster-${workers}.csv`);
      await writeFile(csv, `${lines.join('\n')}\n`);
      const batch = `cluster-bench-${workers}-${Date.now().toString(36)}`;
      await sleep(2000);
      const cpu0 = await clusterCpu(bed);
      const t0 = Date.now();
      const start = await runCli(
        [
          'start',
          csv,
          '--batch',
          batch,
          '--max-uploads',
          String(limits.maxUploads),
          '--max-conversions',
          String(limits.maxConversions),
        ],
        env,
        dir.dir
      );
      if (start.code !== 0) throw new Error(`vmconvoy start: ${start.stdout}\n${start.stderr}`);
      for (const deadline = t0 + 90 * 60_000; ; await sleep(1000)) {
        const closed = await bed.client.workflow
          .getHandle(batch)
          .describe()
          .then((d) => d.status.name !== 'RUNNING')
          .catch(() => false);
        if (closed) break;
        if (Date.now() > deadline) throw new Error(`batch ${batch} did not close within 90 minutes`);
      }
      const t1 = Date.now();
      const cpu1 = await clusterCpu(bed);
      const cpu = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, v - (cpu0[k] ?? 0)]));
      const seconds = (t1 - t0) / 1000;
      const run: RunFigures = {
        workers,
        seconds,
        perMinute: (vms / seconds) * 60,
        cpu,
        fleet: await taskLatency(bed.client, batch, t0, t1),
        quota: await taskLatency(bed.client, quotaId, t0, t1),
      };
      runs.push(run);
      ctx.log(
        `${workers} shared worker(s): ${vms} VMs in ${seconds.toFixed(1)} s (${run.perMinute.toFixed(0)} VMs/min); CPU-s ${Object.entries(
          cpu
        )
          .map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(', ')}`
      );
      for (const [name, l] of [
        ['fleet', run.fleet],
        ['quota', run.quota],
      ] as const)
        ctx.log(
          `${name} workflow: ${l.tasks} tasks; schedule→start median ${l.toStart.median} ms (first quarter ${l.toStart.early}, last ${l.toStart.late}, p95 ${l.toStart.p95}); start→complete median ${l.toComplete.median} ms (first quarter ${l.toComplete.early}, last ${l.toComplete.late}, p95 ${l.toComplete.p95})`
        );
    }

    const figures: BenchFigure[] = [];
    const notes: string[] = [];
    for (const r of runs) {
      const tag = `${r.workers} shared worker${r.workers > 1 ? 's' : ''}`;
      figures.push({ label: `${tag}: throughput`, value: r.perMinute, unit: 'VMs/min' });
      const total = Object.values(r.cpu).reduce((a, b) => a + b, 0);
      figures.push({ label: `${tag}: CPU per VM, all processes`, value: (total / vms) * 1000, unit: 'ms' });
      for (const [name, s] of Object.entries(r.cpu))
        figures.push({ label: `${tag}: CPU per VM, ${name}`, value: (s / vms) * 1000, unit: 'ms' });
      for (const [name, l] of [
        ['fleet', r.fleet],
        ['quota', r.quota],
      ] as const) {
        figures.push({
          label: `${tag}: ${name} workflow task, schedule→start median`,
          value: l.toStart.median,
          unit: 'ms',
        });
        figures.push({ label: `${tag}: ${name} workflow task, schedule→start p95`, value: l.toStart.p95, unit: 'ms' });
        figures.push({
          label: `${tag}: ${name} workflow task, start→complete median`,
          value: l.toComplete.median,
          unit: 'ms',
        });
        notes.push(
          `${tag}, ${name} workflow: ${l.tasks} workflow tasks in the run; schedule→start median ${l.toStart.median} ms in the first quarter of the run, ${l.toStart.late} ms in the last; start→complete ${l.toComplete.early} → ${l.toComplete.late} ms.`
        );
      }
      // Which process was busiest: its CPU seconds over the wall time is the share of one core it used.
      const busiest = Object.entries(r.cpu).sort((a, b) => b[1] - a[1]);
      notes.push(
        `${tag}: ${vms} VMs in ${r.seconds.toFixed(0)} s; cores used by process (CPU-s / wall s): ${busiest
          .map(([k, v]) => `${k} ${(v / r.seconds).toFixed(2)}`)
          .join(', ')}; all together ${(total / r.seconds).toFixed(2)} of the machine's 2 cores.`
      );
    }
    return {
      name: 'cluster',
      finishedAt: new Date().toISOString(),
      quick: ctx.quick,
      parameters: { vms, imageMiB: 1, ...limits, sim: INSTANT_SIM, workers: [1, 2] },
      figures,
      notes,
    };
  } finally {
    await bed?.stop().catch(() => undefined);
    await dir.remove();
  }
}
