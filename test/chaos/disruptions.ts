/**
 * The chaos driver: a plan of disruptions (SIGKILL of the worker, restarts of the Temporal dev server, the
 * S3 server and the EC2 simulator), each struck at a moment of the batch it waits for: while parts are in
 * flight, while conversions are waited on, while a VM validates. Moments are observed from outside (the
 * VM workflows' MigrationPhase search attribute, the S3 proxy, the simulator's instances and the quota
 * workflow's holders), as an operator would see them, and the exact instant inside a moment is random
 * (seeded). Beside the plan, a trap (trapBootCheck) stops one VM's instance during its boot check, the
 * validation failure the run later retries.
 */
import type { Client } from '@temporalio/client';
import type { LocalEnv } from '../../dev/local-env';
import { vmWorkflowId } from '../../common/workflow-ids';
import type { SlotHolder } from '../../workflows/messages';
import { migrationPhaseKey } from '../../workflows/search-attributes';
import type { SimState } from '../helpers/testbed';

/**
 * `terminate-vm`: an operator terminates a VM workflow that holds a conversion slot (it never gives the slot
 * back itself; the quota's liveness check must), and the run's `vmconvoy retry` runs the VM again.
 */
export type DisruptionKind = 'kill-worker' | 'restart-temporal' | 'restart-s3' | 'restart-sim' | 'terminate-vm';
/**
 * `boot-check`: an instance of the batch is between a boot check's StartInstances and its StopInstances
 * (nothing else starts an imported instance). `holding-slot`: a VM of the batch holds a conversion slot
 * (the quota workflow's holders).
 */
export type Moment = 'uploading' | 'converting' | 'validating' | 'boot-check' | 'holding-slot' | 'any';

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
  /** How long the process was down (kill to ready again); for terminate-vm, until its slot was free again. */
  downMs: number;
  /** terminate-vm: the VM terminated, and whether the quota took its slot back within one check interval. */
  vm?: string;
  slotFreed?: boolean;
  /** StartInstances and StopInstances calls the simulator had answered when it struck (boot-check moments). */
  startStopCalls?: { start: number; stop: number };
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
  simState(): Promise<SimState>;
  /** The quota workflow's slot holders; undefined while it cannot answer. */
  quotaHolders(): Promise<SlotHolder[] | undefined>;
  /** The quota's liveness-check interval: a terminated holder's slot must be free within it. */
  holderCheckSeconds: number;
  /** VMs no disruption may pick as its target (the planned failures, the trapped VM). */
  spared: ReadonlySet<string>;
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

/** The phase of one VM of the batch (its latest run), from visibility; undefined while unknown. */
export async function vmPhase(client: Client, batch: string, vm: string): Promise<string | undefined> {
  try {
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${vmWorkflowId(batch, vm)}"` }))
      return wf.typedSearchAttributes.get(migrationPhaseKey) ?? 'Pending';
  } catch {
    // Temporal restarting: unknown for now.
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Started by a boot check: running, or pending once its conversion has completed. An instance being
 * converted is `pending` too (EC2 shows it from the start; activities/vm-resources.ts isBootedImport tells
 * them apart by the root volume EC2 lists only when done: here, by its task's state).
 */
function booted(i: SimState['instances'][number], sim: SimState): boolean {
  if (i.state === 'running') return true;
  return i.state === 'pending' && sim.tasks.some((t) => t.instanceId === i.instanceId && t.state === 'completed');
}

/** Instances of the batch in a boot check (between StartInstances and StopInstances), not of a spared VM. */
function bootingInstances(ctx: DriverContext, sim: SimState): SimState['instances'] {
  return sim.instances.filter(
    (i) => i.tags['vmconvoy:batch'] === ctx.batch && !ctx.spared.has(i.tags['vmconvoy:vm'] ?? '') && booted(i, sim)
  );
}

/** Slot holders that are VMs of this batch (not spared), as `{vm, holder}`. */
function batchHolders(ctx: DriverContext, holders: SlotHolder[]): Array<{ vm: string; holder: SlotHolder }> {
  const prefix = vmWorkflowId(ctx.batch, '');
  return holders
    .filter((h) => h.workflowId.startsWith(prefix) && h.runId !== undefined)
    .map((holder) => ({ vm: holder.workflowId.slice(prefix.length), holder }))
    .filter(({ vm }) => !ctx.spared.has(vm));
}

/** What an async moment needs (sim state, quota holders), fetched only for the moments that use it. */
interface Observed {
  sim?: SimState;
  holders?: SlotHolder[];
}

async function observe(ctx: DriverContext, moment: Moment): Promise<Observed> {
  if (moment === 'boot-check') return { sim: await ctx.simState().catch(() => undefined) };
  if (moment === 'holding-slot') return { holders: await ctx.quotaHolders() };
  return {};
}

function momentReached(
  ctx: DriverContext,
  moment: Moment,
  phases: Record<string, number>,
  partsInFlight: number,
  seen: Observed
): boolean {
  switch (moment) {
    case 'boot-check':
      return seen.sim !== undefined && bootingInstances(ctx, seen.sim).length > 0;
    case 'holding-slot':
      return seen.holders !== undefined && batchHolders(ctx, seen.holders).length > 0;
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

/**
 * Terminates one slot holder's run (as `temporal workflow terminate` would), then watches the quota until
 * that run no longer holds a slot: the liveness check must take it back within one interval (plus the
 * check's own activity and a restart's worth of slack).
 */
async function terminateHolder(ctx: DriverContext): Promise<Pick<DisruptionRecord, 'vm' | 'slotFreed'>> {
  const candidates = batchHolders(ctx, (await ctx.quotaHolders()) ?? []);
  if (candidates.length === 0) return {};
  const { vm, holder } = candidates[Math.floor(ctx.random() * candidates.length)]!;
  await ctx.client.workflow
    .getHandle(holder.workflowId, holder.runId)
    .terminate('chaos: an operator terminates a VM that holds a conversion slot');
  const terminatedAt = Date.now();
  const limitMs = (ctx.holderCheckSeconds + 30) * 1000;
  for (;;) {
    const holders = await ctx.quotaHolders();
    if (holders && !holders.some((h) => h.runId === holder.runId)) {
      ctx.log(
        `chaos: the quota took back ${vm}'s slot ${((Date.now() - terminatedAt) / 1000).toFixed(0)} s after the terminate`
      );
      return { vm, slotFreed: true };
    }
    if (Date.now() - terminatedAt > limitMs) return { vm, slotFreed: false };
    await sleep(1000);
  }
}

async function strike(ctx: DriverContext, d: Disruption): Promise<{ downMs: number } & Partial<DisruptionRecord>> {
  const started = Date.now();
  let extra: Partial<DisruptionRecord> = {};
  switch (d.kind) {
    case 'terminate-vm':
      extra = await terminateHolder(ctx);
      break;
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
  return { ...extra, downMs: Date.now() - started };
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
    let observed: Observed = {};
    for (;;) {
      phases = (await phaseCounts(ctx.client, ctx.batch)) ?? phases;
      observed = await observe(ctx, d.during);
      if (momentReached(ctx, d.during, phases, ctx.partsInFlight(), observed)) {
        seen = true;
        break;
      }
      if (Date.now() > deadline || (await ctx.batchClosed())) break;
      await sleep(200);
    }
    // Somewhere inside the moment, not always at its first instant. A boot check's window is a few seconds
    // (status ok comes at the next 10 s poll), so it is struck at once.
    const jitterMs = d.during === 'any' ? 8000 : d.during === 'boot-check' ? 0 : 800;
    if (seen) await sleep(ctx.random() * jitterMs);
    const partsInFlight = ctx.partsInFlight();
    const at = Date.now();
    if (d.during === 'boot-check' && observed.sim) {
      const booting = bootingInstances(ctx, observed.sim).map((i) => `${i.tags['vmconvoy:vm']} ${i.state}`);
      ctx.log(`chaos: in a boot check: ${booting.join(', ')}`);
    }
    const startStopCalls = observed.sim
      ? { start: observed.sim.calls.StartInstances ?? 0, stop: observed.sim.calls.StopInstances ?? 0 }
      : undefined;
    ctx.log(
      `chaos: ${d.kind} during ${d.during}${seen ? '' : ' (moment not seen: struck anyway)'}; parts in flight ${partsInFlight}; ${JSON.stringify(phases)}`
    );
    const struck = await strike(ctx, d);
    if (slowValidation) await ctx.simConfigure({ faults: ctx.faults });
    records.push({ ...d, ...struck, at, momentSeen: seen, partsInFlight, phases, startStopCalls });
    await sleep(opts.gapMs);
  }
  return records;
}

// ---------------------------------------------------------------------------------------------------
// The validation failure that `vmconvoy retry` later repairs
// ---------------------------------------------------------------------------------------------------

export interface TrapResult {
  vm: string;
  /** StopInstances the trap sent (one per boot-check attempt of the VM's first run). */
  stops: number;
  /** The VM's first run ended Failed (what the trap is for). */
  failed: boolean;
}

/**
 * Someone else's automation (an instance scheduler, a colleague in the console) stops the VM's freshly
 * imported instance while vmconvoy's boot check waits for it to pass its status checks: the check times
 * out (bootCheckTimeoutSeconds) and the VM fails validation with its instance stopped and intact. The
 * operator's `vmconvoy retry` must then adopt that instance (same task, same instance) and pass. Every
 * boot-check attempt of the first run is stopped (a worker kill may retry the validation), until the VM's
 * first run has ended. `stop` sends StopInstances through the EC2 API, as that automation would.
 */
export async function trapBootCheck(
  ctx: Pick<DriverContext, 'client' | 'batch' | 'simState' | 'log' | 'batchClosed'>,
  vm: string,
  stop: (instanceId: string) => Promise<void>
): Promise<TrapResult> {
  let stops = 0;
  const stopped = new Set<string>();
  let lastPhaseAt = 0;
  for (;;) {
    if (Date.now() - lastPhaseAt > 2000) {
      lastPhaseAt = Date.now();
      const phase = await vmPhase(ctx.client, ctx.batch, vm);
      if (phase === 'Failed' || phase === 'Completed' || phase === 'Cancelled') {
        ctx.log(`chaos: ${vm}'s first run ended ${phase} after ${stops} stops of its instance during boot checks`);
        return { vm, stops, failed: phase === 'Failed' };
      }
      if (await ctx.batchClosed()) return { vm, stops, failed: false };
    }
    const sim = await ctx.simState().catch(() => undefined);
    const running = sim?.instances.find(
      (i) => i.tags['vmconvoy:batch'] === ctx.batch && i.tags['vmconvoy:vm'] === vm && i.state === 'running'
    );
    // Once per start: a stopping instance still shows `running` to a fast poll for a moment.
    const key = running ? `${running.instanceId}@${sim!.calls.StartInstances ?? 0}` : '';
    if (running && !stopped.has(key)) {
      stopped.add(key);
      ctx.log(`chaos: stopping ${vm}'s instance ${running.instanceId} during its boot check`);
      await stop(running.instanceId);
      stops += 1;
    }
    await sleep(300);
  }
}
