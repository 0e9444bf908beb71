/**
 * migrateFleetWorkflow: one batch. Starts one migrateVmWorkflow child per inventory row in a sliding
 * window: at most `maxUploads` VMs uploading, at most `maxInFlight` started and unfinished; conversions
 * are limited account-wide by the conversion-quota workflow. Waves run in order, an optional canary goes
 * first, a failure budget pauses the batch. Children are abandoned on continue-as-new and report back by
 * signal to the fleet's workflow ID, so they reach whichever run is current.
 *
 * Re-running a batch (same workflow ID) walks the inventory again: a VM that completed is never started
 * twice (child ID reuse policy), a running one is adopted, a failed one runs again reusing its parts.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FleetInput, FleetLimits, FleetProgress, FleetStatus, InventoryRow, SetLimitsRequest } from '../common/contracts/fleet';
import { INVENTORY_PAGE_SIZE } from '../common/contracts/fleet';
import {
  fleetStatusQuery,
  pauseFleetSignal,
  resumeFleetSignal,
  retryFleetUpdate,
  setLimitsUpdate,
  setQuotaLimitSignal,
  vmFinishedSignal,
  vmUploadedSignal,
} from './messages';
import { SHORT_HEARTBEAT_TIMEOUT } from './activity-profiles';
import { migrateVmWorkflow } from './migrate-vm';
import { migrationBatchKey, migrationPhaseKey, migrationVmKey } from './search-attributes';
import { FLEET_RECONCILE_TIMER_PATCH, FLEET_STARTS_AT_ONCE_PATCH } from './versions';

const fleet = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/** VMs started per run before continuing as new (each start costs a handful of history events). */
const STARTS_PER_RUN = 200;
/** How often to look for VMs that ended without telling us (terminated by an operator). */
const RECONCILE_INTERVAL = '5 minutes';

export interface FleetSummary {
  batch: string;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  alreadyDone: number;
}

export function effectiveLimits(limits: FleetLimits): Required<FleetLimits> {
  return { ...limits, maxInFlight: limits.maxInFlight ?? limits.maxUploads + 2 * limits.maxConversions };
}

/** Validates a limits change before it reaches history (pure, unit-tested). */
export function validateLimits(request: SetLimitsRequest): void {
  for (const [name, value] of Object.entries(request)) {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1)) {
      throw new Error(`${name} must be a whole number of at least 1 (got ${String(value)})`);
    }
  }
}

function initialProgress(): FleetProgress {
  return {
    nextRow: 0,
    running: {},
    completed: 0,
    failed: 0,
    cancelled: 0,
    failedRows: [],
    cancelledRows: [],
    retryQueue: [],
    paused: false,
    canaryPassed: false,
    alreadyDone: 0,
  };
}

export async function migrateFleetWorkflow(input: FleetInput): Promise<FleetSummary> {
  const { batch } = input;
  const p = input.progress ?? initialProgress();
  let limits = effectiveLimits(input.limits);
  let startsThisRun = 0;
  /** VMs whose child start is issued and not yet settled (started, or found to exist already). */
  const starting = new Set<string>();
  let startFailure: Error | undefined;
  let cancelling = false;
  /** Bumped by every message handler, so the main loop wakes on any change. */
  let changes = 0;
  /** Row index of each running VM, to re-queue it on retry. */
  const rowOf = new Map<string, number>();
  let page: { index: number; rows: InventoryRow[] } | undefined;

  const uploading = (): number => Object.values(p.running).filter((r) => !r.uploaded).length;
  const runningCount = (): number => Object.keys(p.running).length;
  const currentWave = (): number => Math.max(0, ...Object.values(p.running).map((r) => r.wave));
  const finished = (): number => p.completed + p.failed + p.cancelled;
  const exhausted = (): boolean => p.nextRow >= input.total && p.retryQueue.length === 0;

  const status = (): FleetStatus => ({
    batch,
    state: cancelling ? 'cancelled' : p.paused ? 'paused' : 'running',
    pauseReason: p.pauseReason,
    total: input.total,
    started: p.nextRow,
    running: Object.keys(p.running),
    uploading: uploading(),
    completed: p.completed,
    failed: p.failed,
    cancelled: p.cancelled,
    currentWave: currentWave(),
    limits,
    canary: input.canary,
    canaryPassed: p.canaryPassed,
    failureBudgetPercent: input.failureBudgetPercent,
  });

  function recordEnd(vm: string, phase: 'Completed' | 'Failed' | 'Cancelled', row?: number): void {
    if (!(vm in p.running)) return; // duplicate or unknown: harmless
    delete p.running[vm];
    changes += 1;
    const r = row ?? rowOf.get(vm);
    if (phase === 'Completed') p.completed += 1;
    else if (phase === 'Failed') {
      p.failed += 1;
      if (r !== undefined && !p.failedRows.includes(r)) p.failedRows.push(r);
    } else {
      p.cancelled += 1;
      if (r !== undefined && !p.cancelledRows.includes(r)) p.cancelledRows.push(r);
    }
    if (input.failureBudgetPercent !== undefined && !p.paused && p.failed * 100 > input.failureBudgetPercent * finished()) {
      p.paused = true;
      p.pauseReason = `failure budget exceeded: ${p.failed} of ${finished()} finished VMs failed (budget ${input.failureBudgetPercent}%)`;
    }
  }

  setHandler(fleetStatusQuery, status);
  setHandler(vmUploadedSignal, ({ vm }) => {
    const r = p.running[vm];
    if (r) r.uploaded = true;
    changes += 1;
  });
  setHandler(vmFinishedSignal, ({ vm, phase }) => recordEnd(vm, phase));
  setHandler(pauseFleetSignal, ({ reason }) => {
    p.paused = true;
    p.pauseReason = reason ?? 'paused by the operator';
    changes += 1;
  });
  setHandler(resumeFleetSignal, () => {
    p.paused = false;
    p.pauseReason = undefined;
    changes += 1;
  });
  setHandler(
    retryFleetUpdate,
    () => {
      const failed = p.failedRows.splice(0);
      const cancelled = p.cancelledRows.splice(0);
      p.retryQueue.push(...failed, ...cancelled);
      p.failed -= failed.length;
      p.cancelled -= cancelled.length;
      // Retrying is the operator's answer to a budget or canary pause.
      if (p.pauseReason?.startsWith('failure budget') || p.pauseReason?.startsWith('canary')) {
        p.paused = false;
        p.pauseReason = undefined;
      }
      changes += 1;
      return failed.length + cancelled.length;
    },
    { description: 'Re-run the failed and cancelled VMs of this batch.' }
  );
  setHandler(
    setLimitsUpdate,
    async (request) => {
      // An explicit maxInFlight stays; otherwise it follows the other two limits.
      const explicitInFlight = request.maxInFlight ?? input.limits.maxInFlight;
      limits = effectiveLimits({ ...limits, ...request, maxInFlight: explicitInFlight });
      changes += 1;
      if (request.maxConversions !== undefined) {
        await getExternalWorkflowHandle(input.quotaWorkflowId).signal(setQuotaLimitSignal, request.maxConversions);
      }
      return limits;
    },
    { validator: validateLimits, description: 'Change upload, conversion and in-flight limits.' }
  );

  async function rowAt(index: number): Promise<InventoryRow> {
    const pageIndex = Math.floor(index / INVENTORY_PAGE_SIZE);
    if (page?.index !== pageIndex) {
      page = { index: pageIndex, rows: await fleet.loadInventoryPage({ inventoryKey: input.inventoryKey, page: pageIndex }) };
    }
    const row = page.rows[index - pageIndex * INVENTORY_PAGE_SIZE];
    if (!row) throw ApplicationFailure.nonRetryable(`inventory row ${index} is missing from ${input.inventoryKey}`, 'InventoryCorrupt');
    return row;
  }

  /** May this row start now? Waves and the canary gate it; pausing and limits gate everything. */
  function gateOpen(row: InventoryRow, isRetry: boolean): boolean {
    if (p.paused || uploading() >= limits.maxUploads || runningCount() >= limits.maxInFlight) return false;
    if (isRetry) return true;
    if (input.canary > 0 && !p.canaryPassed && row.row >= input.canary) return false;
    return runningCount() === 0 || row.spec.wave === currentWave();
  }

  async function startVm(row: InventoryRow): Promise<void> {
    const { spec } = row;
    const workflowId = `${batch}/${spec.name}`;
    // Registered before the start resolves: a busy worker can receive the child's "started" and its first
    // signals in one activation, and the handlers run before the code after `await startChild`. A signal
    // for a VM not yet registered would be dropped, and its upload place held until the next reconcile.
    p.running[spec.name] = { wave: spec.wave, uploaded: false };
    rowOf.set(spec.name, row.row);
    try {
      await startChild(migrateVmWorkflow, {
        workflowId,
        taskQueue: input.vmTaskQueue,
        // The quota workflow runs beside the fleet (on the control queue when the fleet has one).
        args: [{ batch, spec, settings: input.settings, quota: { workflowId: input.quotaWorkflowId, limit: limits.maxConversions, taskQueue: workflowInfo().taskQueue }, fleetWorkflowId: workflowInfo().workflowId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        // A completed VM is never started again; a failed or cancelled one may be.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        typedSearchAttributes: [
          { key: migrationBatchKey, value: batch },
          { key: migrationVmKey, value: spec.name },
          { key: migrationPhaseKey, value: 'Pending' },
        ],
        staticSummary: `${spec.name} → EC2 ${spec.instanceType}`,
      });
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'WorkflowExecutionAlreadyStartedError') {
        delete p.running[spec.name];
        throw err;
      }
      // Started by an earlier run of this batch: adopt it if running, count it if done.
      const state = (await fleet.vmWorkflowStates([workflowId]))[workflowId];
      if (state === 'running') {
        const r = p.running[spec.name];
        if (r) r.uploaded = true;
      } else {
        delete p.running[spec.name];
        p.completed += 1;
        p.alreadyDone += 1;
      }
    }
  }

  /** A child start (or the reconcile loop) failed for a reason other than cancellation: the run fails. */
  function throwStartFailure(): void {
    if (startFailure) throw startFailure;
  }

  /** VMs that ended without a signal (terminated) are found by asking the server. */
  async function reconcile(): Promise<void> {
    // A VM whose start is still pending is not known to the server yet ("missing").
    const names = Object.keys(p.running).filter((n) => !starting.has(n));
    if (names.length === 0) return;
    const states = await fleet.vmWorkflowStates(names.map((n) => `${batch}/${n}`));
    for (const name of names) {
      const state = states[`${batch}/${name}`];
      if (state === 'completed') recordEnd(name, 'Completed');
      else if (state === 'failed' || state === 'missing') recordEnd(name, 'Failed');
      else if (state === 'cancelled') recordEnd(name, 'Cancelled');
    }
  }

  // One timer for the whole run instead of one per wait of the main loop (two history events each time
  // the fleet woke up, which is every signal).
  const reconcileTimer = patched(FLEET_RECONCILE_TIMER_PATCH);
  if (reconcileTimer) {
    void (async () => {
      for (;;) {
        await sleep(RECONCILE_INTERVAL);
        await reconcile();
      }
    })().catch((err: unknown) => {
      // Cancellation ends it with the run; anything else fails the run through the main loop.
      if (!isCancellation(err)) startFailure ??= err instanceof Error ? err : new Error(String(err));
      changes += 1;
    });
  }

  try {
    for (;;) {
      throwStartFailure();
      if (exhausted() && runningCount() === 0) break;
      if (startsThisRun >= STARTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
        // Every start settled: a child whose start is still pending would be lost to the next run.
        await condition(() => starting.size === 0 && allHandlersFinished());
        throwStartFailure();
        await continueAsNew<typeof migrateFleetWorkflow>({ ...input, limits, progress: p });
      }
      // Canary: once every canary VM has finished, it passed only if they all completed.
      if (input.canary > 0 && !p.canaryPassed && p.nextRow >= Math.min(input.canary, input.total) && runningCount() === 0) {
        if (p.failed + p.cancelled === 0) p.canaryPassed = true;
        else if (!p.paused) {
          p.paused = true;
          p.pauseReason = `canary failed: ${p.failed + p.cancelled} of the first ${input.canary} VMs did not complete; fix them and run retry`;
        }
      }
      const isRetry = p.retryQueue.length > 0;
      const next = isRetry ? await rowAt(p.retryQueue[0]!) : p.nextRow < input.total ? await rowAt(p.nextRow) : undefined;
      const ready = next !== undefined && gateOpen(next, isRetry);
      if (!ready) {
        const seen = changes;
        if (reconcileTimer) {
          await condition(() => changes !== seen);
        } else {
          const changed = await condition(() => changes !== seen, RECONCILE_INTERVAL);
          if (!changed) await reconcile();
        }
        continue;
      }
      if (isRetry) p.retryQueue.shift();
      else p.nextRow += 1;
      startsThisRun += 1;
      if (patched(FLEET_STARTS_AT_ONCE_PATCH)) {
        // Start every VM the window allows in this workflow task: waiting for each child's start before the
        // next limited a fleet to a few starts per second. startVm registers the VM before it yields, so the
        // window counts it at once.
        starting.add(next.spec.name);
        void startVm(next)
          .catch((err: unknown) => {
            startFailure ??= err instanceof Error ? err : new Error(String(err));
          })
          .finally(() => {
            starting.delete(next.spec.name);
            changes += 1;
          });
      } else {
        await startVm(next);
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelling = true;
    // Cancel every running VM (each cleans up after itself) and wait for them to report, within reason.
    await CancellationScope.nonCancellable(async () => {
      for (const name of Object.keys(p.running)) {
        await getExternalWorkflowHandle(`${batch}/${name}`).cancel().catch(() => undefined);
      }
      if (!(await condition(() => runningCount() === 0, '15 minutes'))) await reconcile();
    });
    throw err;
  }
  await condition(allHandlersFinished);
  return { batch, total: input.total, completed: p.completed, failed: p.failed, cancelled: p.cancelled, alreadyDone: p.alreadyDone };
}
