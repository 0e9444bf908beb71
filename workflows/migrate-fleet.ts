/**
 * migrateFleetWorkflow: one batch. Starts one migrateVmWorkflow child per inventory row in a sliding
 * window: at most `maxUploads` VMs uploading, at most `maxInFlight` started and unfinished; conversions
 * are limited account-wide by the conversion-quota workflow. Waves run in order, an optional canary goes
 * first, a failure budget pauses the batch. Children are abandoned on continue-as-new and report back by
 * signal to the fleet's workflow ID, so they reach whichever run is current.
 *
 * The rules (limits, waves, canary, budget, pause, retry, progress) live in FleetScheduler; this file
 * wires messages to it, loads inventory rows, starts children, reconciles and continues as new.
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
import type { FleetInput, InventoryRow } from '../common/contracts/fleet';
import { INVENTORY_PAGE_SIZE } from '../common/contracts/fleet';
import { validateLimits } from './fleet-limits';
import type { FleetSummary } from './fleet-progress';
import { FleetScheduler } from './fleet-scheduler';
import { vmWorkflowId } from '../common/workflow-ids';
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
import {
  FLEET_BATCH_REPORT_PATCH,
  FLEET_CANCEL_REPORT_PATCH,
  FLEET_RECONCILE_TIMER_PATCH,
  FLEET_STARTS_AT_ONCE_PATCH,
} from './versions';
import { FleetAccounts } from './fleet-accounts';
import type { BatchEndState } from './fleet-end';
import { writeBatchEnd } from './fleet-end';
import { FleetNotifier, notifyTargetOf } from './notify';

const fleet = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/** VMs started per run before continuing as new (each start costs a handful of history events). */
const STARTS_PER_RUN = 200;
/** How often to look for VMs that ended without telling us (terminated by an operator). */
const RECONCILE_INTERVAL = '5 minutes';

// Existing importers (tests, bench) read these from here.
export type { FleetSummary } from './fleet-progress';
export { effectiveLimits, validateLimits } from './fleet-limits';

export async function migrateFleetWorkflow(input: FleetInput): Promise<FleetSummary> {
  const { batch } = input;
  const scheduler = new FleetScheduler(input);
  let startsThisRun = 0;
  /** VMs whose child start is issued and not yet settled (started, or found to exist already). */
  const starting = new Set<string>();
  let startFailure: Error | undefined;
  /**
   * Bumped whenever the main loop should look again (a message changed the state, a start settled); the
   * loop waits for it to move. Bumped exactly where it always was: each wake of the unpatched loop costs
   * timer commands, so an extra or a missing bump would break replay.
   */
  let wakeups = 0;
  const wakeLoop = (): void => {
    wakeups += 1;
  };
  let page: { index: number; rows: InventoryRow[] } | undefined;
  // --- notifications (issue 20): only a batch started with --notify emits anything.
  const notifier = new FleetNotifier(batch, notifyTargetOf(input));
  const counts = (): { completed: number; failed: number; cancelled: number } => {
    const { completed, failed, cancelled } = scheduler.summary();
    return { completed, failed, cancelled };
  };

  // Each row's (profile, Region) → the account behind it, asked once per batch (issue 20).
  const fleetAccounts = new FleetAccounts(input, () => scheduler.limits.maxConversions);
  const accountsPatched = fleetAccounts.enabled;
  const accounts = fleetAccounts.known;
  const quotaIds = (): string[] => fleetAccounts.quotaIds();

  setHandler(fleetStatusQuery, () =>
    accountsPatched ? { ...scheduler.status(), accounts: [...accounts.values()] } : scheduler.status()
  );
  setHandler(vmUploadedSignal, ({ vm }) => {
    scheduler.vmUploaded(vm);
    wakeLoop();
  });
  setHandler(vmFinishedSignal, (finished) => {
    if (scheduler.vmEnded(finished.vm, finished.phase)) {
      notifier.vmEnded(finished);
      wakeLoop();
    }
  });
  setHandler(pauseFleetSignal, ({ reason }) => {
    scheduler.pause(reason);
    wakeLoop();
  });
  setHandler(resumeFleetSignal, () => {
    scheduler.resume();
    wakeLoop();
  });
  setHandler(
    retryFleetUpdate,
    () => {
      const requeued = scheduler.retry();
      wakeLoop();
      return requeued;
    },
    { description: 'Re-run the failed and cancelled VMs of this batch.' }
  );
  setHandler(
    setLimitsUpdate,
    async (request) => {
      scheduler.setLimits(request);
      wakeLoop();
      if (request.maxConversions !== undefined) {
        // Every account+Region this batch uses so far (one quota before accounts).
        for (const id of quotaIds())
          await getExternalWorkflowHandle(id).signal(setQuotaLimitSignal, request.maxConversions);
      }
      // Read after the signal: a concurrent change may have landed meanwhile.
      return scheduler.limits;
    },
    { validator: validateLimits, description: 'Change upload, conversion and in-flight limits.' }
  );

  /** Row `index` of the loaded page, if that page holds it (rows carry their own position). */
  const inPage = (index: number): InventoryRow | undefined => {
    const row = page?.rows[index - (page.rows[0]?.row ?? 0)];
    return row?.row === index ? row : undefined;
  };

  /**
   * Pages hold a varying number of rows (capped in bytes too), so the page in memory is asked whether it
   * holds the row, and the loader finds the page of a row. For inventories stored with fixed pages this
   * loads exactly where `floor(index / INVENTORY_PAGE_SIZE)` did: the same commands on replay.
   */
  async function rowAt(index: number): Promise<InventoryRow> {
    let row = inPage(index);
    if (!row) {
      const pageIndex = Math.floor(index / INVENTORY_PAGE_SIZE);
      const rows = await fleet.loadInventoryPage({ inventoryKey: input.inventoryKey, page: pageIndex, row: index });
      page = { index: pageIndex, rows };
      row = inPage(index);
    }
    if (!row) {
      throw ApplicationFailure.nonRetryable(
        `inventory row ${index} is missing from ${input.inventoryKey}`,
        'InventoryCorrupt'
      );
    }
    return row;
  }

  /** Starts the child of a VM the scheduler has already counted as running. */
  async function startVm(row: InventoryRow): Promise<void> {
    const { spec } = row;
    const workflowId = vmWorkflowId(batch, spec.name);
    const { account, problem, quotaId } = await fleetAccounts.placeOf(spec);
    try {
      await startChild(migrateVmWorkflow, {
        workflowId,
        taskQueue: input.vmTaskQueue,
        args: [
          {
            batch,
            spec,
            settings: input.settings,
            // The quota workflow runs beside the fleet (on the control queue when the fleet has one).
            quota: {
              workflowId: quotaId,
              limit: scheduler.limits.maxConversions,
              taskQueue: workflowInfo().taskQueue,
            },
            fleetWorkflowId: workflowInfo().workflowId,
            ...(account ? { aws: account } : {}),
            ...(problem ? { awsProblem: problem } : {}),
          },
        ],
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
        scheduler.startFailed(spec.name);
        throw err;
      }
      // Started by an earlier run of this batch: adopt it if running, count it if done.
      const state = (await fleet.vmWorkflowStates([workflowId]))[workflowId];
      scheduler.alreadyStarted(spec.name, state);
    }
  }

  /** A child start (or the reconcile loop) failed for a reason other than cancellation: the run fails. */
  function throwStartFailure(): void {
    if (startFailure) throw startFailure;
  }

  /** VMs that ended without a signal (terminated) are found by asking the server. */
  async function reconcile(): Promise<void> {
    // A VM whose start is still pending is not known to the server yet ("missing").
    const names = scheduler.runningVms().filter((name) => !starting.has(name));
    if (names.length === 0) return;
    const states = await fleet.vmWorkflowStates(names.map((name) => vmWorkflowId(batch, name)));
    for (const name of names) {
      if (scheduler.vmStateObserved(name, states[vmWorkflowId(batch, name)])) wakeLoop();
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
      wakeLoop();
    });
  }

  try {
    for (;;) {
      throwStartFailure();
      if (scheduler.isFinished()) break;
      if (startsThisRun >= STARTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
        // Every start settled: a child whose start is still pending would be lost to the next run.
        await condition(() => starting.size === 0 && notifier.idle() && allHandlersFinished());
        throwStartFailure();
        await continueAsNew<typeof migrateFleetWorkflow>({
          ...input,
          limits: scheduler.limits,
          progress: scheduler.snapshot(),
          ...(accountsPatched ? { accounts: Object.fromEntries(accounts) } : {}),
        });
      }
      const candidate = scheduler.next();
      // The row is loaded before the gates are asked, even when they are shut: history has it this way.
      const row = candidate && (await rowAt(candidate.row));
      if (notifier.enabled && row && !candidate.isRetry) {
        notifier.waveAhead(row.spec.wave, counts(), scheduler.runningVms().length === 0);
      }
      if (!candidate || !row || !scheduler.tryStart(candidate, row)) {
        const seen = wakeups;
        if (reconcileTimer) {
          await condition(() => wakeups !== seen);
        } else {
          const woken = await condition(() => wakeups !== seen, RECONCILE_INTERVAL);
          if (!woken) await reconcile();
        }
        continue;
      }
      startsThisRun += 1;
      const vm = row.spec.name;
      if (patched(FLEET_STARTS_AT_ONCE_PATCH)) {
        // Start every VM the window allows in this workflow task: waiting for each child's start before the
        // next limited a fleet to a few starts per second. tryStart counted the VM as running already, so
        // the window counts it at once.
        starting.add(vm);
        void startVm(row)
          .catch((err: unknown) => {
            startFailure ??= err instanceof Error ? err : new Error(String(err));
          })
          .finally(() => {
            starting.delete(vm);
            wakeLoop();
          });
      } else {
        await startVm(row);
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    scheduler.cancel();
    // Cancel every running VM (each cleans up after itself) and wait for them to report, within reason.
    await CancellationScope.nonCancellable(async () => {
      for (const name of scheduler.runningVms()) {
        await getExternalWorkflowHandle(vmWorkflowId(batch, name))
          .cancel()
          .catch(() => undefined);
      }
      if (!(await condition(() => scheduler.runningVms().length === 0, '15 minutes'))) await reconcile();
      // A cancelled batch is a batch too: the change board still wants its record.
      if (patched(FLEET_CANCEL_REPORT_PATCH)) await endOfBatch('cancelled');
    });
    throw err;
  }
  await condition(allHandlersFinished);
  const summary = scheduler.summary();
  await endOfBatch(summary.failed > 0 ? 'failed' : 'completed', FLEET_BATCH_REPORT_PATCH);
  return summary;

  function endOfBatch(state: BatchEndState, reportPatch?: string): Promise<void> {
    return writeBatchEnd(
      { batch, dryRun: input.settings.dryRun, conversionLimit: scheduler.limits.maxConversions, notifier },
      { ...counts(), total: scheduler.summary().total },
      state,
      reportPatch
    );
  }
}
