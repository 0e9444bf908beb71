/**
 * The chaos driver: a plan of disruptions (SIGKILL of the worker, restarts of the Temporal dev server, the
 * S3 server and the EC2 simulator), each struck at a moment of the batch it waits for: while parts are in
 * flight, while conversions are waited on, while a VM validates. Moments are observed from outside (the
 * VM workflows' MigrationPhase search attribute and the S3 proxy), as an operator would see them, and the
 * exact instant inside a moment is random (seeded).
 */
import type { Client } from '@temporalio/client';
import type { LocalEnv } from '../../dev/local-env';
import { migrationPhaseKey } from '../../workflows/search-attributes';

export type DisruptionKind = 'kill-worker' | 'restart-temporal' | 'restart-s3' | 'restart-sim';
export type Moment = 'uploading' | 'converting' | 'validating' | 'any';

export interface Disruption {
  kind: DisruptionKind;
  during: Moment;
  /** Not before this fraction of the VMs has finished (spreads the plan over the batch). @default 0 */
  afterFinished?: number;
}

export interface DisruptionRecord extends Disruption {
  /** When it struck (ms since the epoch). */
  at: number;
  /** The moment it waited for was seen (false: struck anyway when the wait ran out). */
  momentSeen: boolean;
  /** Part PUTs in flight at the S3 proxy when it struck. */
  partsInFlight: number;
  /** VMs by phase when it struck. */
  phases: Record<string, number>;
  /** How long the process was down (kill to ready again). */
  downMs: number;
}

export interface DriverContext {
  local: LocalEnv;
  client: Client;
  batch: string;
  /** VMs in the batch. */
  total: number;
  /** Part PUTs in flight right now. */
  partsInFlight(): number;
  simConfigure(patch: unknown): Promise<void>;
  /** The faults in force, restored after the validation trick. */
  faults: Record<string, unknown>;
  random(): number;
  log: (line: string) => void;
  /** True once the batch has closed: remaining disruptions cannot happen. */
  batchClosed(): Promise<boolean>;
}

/** VMs of the batch by MigrationPhase, from visibility; undefined while Temporal is unreachable. */
export async function phaseCounts(client: Client, batch: string): Promise<Record<string, number> | undefined> {
  try {
    const counts: Record<string, number> = {};
    for await (const wf of client.workflow.list({
      query: `MigrationBatch = "${batch}" AND WorkflowType = "migrateVmWorkflow"`,
    })) {
      const phase = wf.typedSearchAttributes.get(migrationPhaseKey) ?? 'Pending';
      counts[phase] = (counts[phase] ?? 0) + 1;
    }
    return counts;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function momentReached(moment: Moment, phases: Record<string, number>, partsInFlight: number): boolean {
  switch (moment) {
    case 'uploading':
      return (phases.Uploading ?? 0) > 0 && partsInFlight > 0;
    case 'converting':
      return (phases.Converting ?? 0) > 0;
    case 'validating':
      return (phases.Validating ?? 0) > 0;
    case 'any':
      return true;
  }
}

/** The EC2 calls of validation, answered slowly for a moment so a kill can land inside one. */
const VALIDATION_ACTIONS = ['DescribeInstances', 'DescribeVolumes', 'CreateTags'];

async function strike(ctx: DriverContext, d: Disruption): Promise<number> {
  const started = Date.now();
  switch (d.kind) {
    case 'kill-worker':
      await ctx.local.killWorker();
      // A crashed host comes back after a while; the server notices missing heartbeats meanwhile.
      await sleep(1000 + ctx.random() * 3000);
      await ctx.local.restartWorker();
      break;
    case 'restart-temporal':
      await ctx.local.restartService('temporal');
      break;
    case 'restart-s3':
      await ctx.local.restartService('s3');
      break;
    case 'restart-sim':
      await ctx.local.restartService('sim');
      break;
  }
  return Date.now() - started;
}

export interface DriverOptions {
  /** How long to wait for each moment before striking anyway. */
  momentTimeoutMs: number;
  /** Pause after each disruption, so the system shows it recovered before the next one. */
  gapMs: number;
}

/** Runs the plan in order; returns what happened. Stops early (recording nothing more) if the batch closes. */
export async function runDisruptions(
  ctx: DriverContext,
  plan: Disruption[],
  opts: DriverOptions
): Promise<DisruptionRecord[]> {
  const records: DisruptionRecord[] = [];
  for (const d of plan) {
    if (await ctx.batchClosed()) {
      ctx.log(`chaos: the batch closed before "${d.kind} during ${d.during}"`);
      break;
    }
    const slowValidation = d.during === 'validating';
    if (slowValidation) {
      await ctx.simConfigure({
        faults: { ...ctx.faults, actions: VALIDATION_ACTIONS, slowResponseRate: 0.7, slowResponseMs: 4000 },
      });
    }
    let phases: Record<string, number> = {};
    const finished = (): number =>
      ((phases.Completed ?? 0) + (phases.Failed ?? 0) + (phases.Cancelled ?? 0)) / ctx.total;
    while (finished() < (d.afterFinished ?? 0) && !(await ctx.batchClosed())) {
      await sleep(1000);
      phases = (await phaseCounts(ctx.client, ctx.batch)) ?? phases;
    }
    const deadline = Date.now() + opts.momentTimeoutMs;
    let seen = false;
    for (;;) {
      phases = (await phaseCounts(ctx.client, ctx.batch)) ?? phases;
      if (momentReached(d.during, phases, ctx.partsInFlight())) {
        seen = true;
        break;
      }
      if (Date.now() > deadline || (await ctx.batchClosed())) break;
      await sleep(200);
    }
    // Somewhere inside the moment, not always at its first instant.
    if (seen) await sleep(ctx.random() * (d.during === 'any' ? 8000 : 800));
    const partsInFlight = ctx.partsInFlight();
    const at = Date.now();
    ctx.log(
      `chaos: ${d.kind} during ${d.during}${seen ? '' : ' (moment not seen: struck anyway)'}; parts in flight ${partsInFlight}; ${JSON.stringify(phases)}`
    );
    const downMs = await strike(ctx, d);
    if (slowValidation) await ctx.simConfigure({ faults: ctx.faults });
    records.push({ ...d, at, momentSeen: seen, partsInFlight, phases, downMs });
    await sleep(opts.gapMs);
  }
  return records;
}
