/**
 * Disruptions of the cluster, measured from outside as an operator sees them: how long the process was
 * down, when the fleet workflow answered a query again (frontend → history → matching → the worker and
 * back), and when the batch made progress again (a VM changed phase in visibility).
 */
import type { Client } from '@temporalio/client';
import type { Cluster, ClusterService } from '../../dev/cluster';
import { phaseCounts } from '../chaos/disruptions';

export interface Recovery {
  what: string;
  /** VMs by phase when it struck. */
  phases: Record<string, number>;
  /** Process stopped or killed → started and listening again. */
  downMs: number;
  /** Strike → the fleet workflow answers its status query. */
  servedMs: number;
  /** Strike → a VM's phase differs from what it was at the strike (or the batch closed). */
  progressMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function answers(client: Client, batch: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(batch).query('fleetStatus');
    return true;
  } catch {
    return false;
  }
}

const same = (a: Record<string, number>, b: Record<string, number>): boolean =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/** Waits until some VM of the batch is in one of `wanted` (as visibility reports it). */
export async function waitForPhase(
  client: Client,
  batch: string,
  wanted: string[],
  timeoutMs: number
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const phases = await phaseCounts(client, batch);
    if (phases && wanted.some((p) => (phases[p] ?? 0) > 0)) return phases;
    if (Date.now() > deadline)
      throw new Error(`no VM reached ${wanted.join('/')} within ${timeoutMs} ms: ${JSON.stringify(phases)}`);
    await sleep(300);
  }
}

export interface StrikeOptions {
  client: Client;
  batch: string;
  /** Named in the table. */
  what: string;
  /**
   * The disruption itself; resolves when what it broke is back (started and listening again), which is the
   * "down" time. E.g. SIGKILL a service, wait, start it; or start one more worker process.
   */
  act(): Promise<void>;
  timeoutMs: number;
  batchClosed(): Promise<boolean>;
}

export async function strikeAndMeasure(opts: StrikeOptions): Promise<Recovery & { at: number }> {
  const { client, batch } = opts;
  const phases = (await phaseCounts(client, batch)) ?? {};
  const at = Date.now();
  await opts.act();
  const downMs = Date.now() - at;
  const deadline = at + opts.timeoutMs;
  let servedMs: number | undefined;
  let progressMs: number | undefined;
  while (servedMs === undefined || progressMs === undefined) {
    if (Date.now() > deadline)
      throw new Error(`${opts.what}: no recovery within ${opts.timeoutMs} ms (served ${servedMs})`);
    if (servedMs === undefined && (await answers(client, batch))) servedMs = Date.now() - at;
    if (progressMs === undefined) {
      const now = await phaseCounts(client, batch);
      if ((now && !same(now, phases)) || (await opts.batchClosed())) progressMs = Date.now() - at;
    }
    await sleep(200);
  }
  return { what: opts.what, phases, downMs, servedMs, progressMs, at };
}

/** `kill`: SIGKILL (PostgreSQL: immediate shutdown), down for `downForMs`, then start; `restart`: stop and start. */
export function serviceStrike(
  cluster: Cluster,
  service: ClusterService,
  how: 'kill' | 'restart',
  downForMs = 0
): () => Promise<void> {
  return async () => {
    if (how === 'kill') {
      await cluster.kill(service);
      await sleep(downForMs);
    }
    await cluster.restart(service);
  };
}

export function formatRecoveries(recoveries: Recovery[]): string[] {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`.padStart(8);
  return [
    `${'disruption'.padEnd(28)}${'down'.padStart(8)}${'answers'.padStart(9)}${'progress'.padStart(10)}  phases at strike`,
    ...recoveries.map(
      (r) => `${r.what.padEnd(28)}${s(r.downMs)} ${s(r.servedMs)}  ${s(r.progressMs)}  ${JSON.stringify(r.phases)}`
    ),
  ];
}
