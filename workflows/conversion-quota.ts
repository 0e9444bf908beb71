/**
 * conversionQuotaWorkflow: the count of concurrent conversions EC2 allows one account in one region
 * (about 5 by default), shared by every batch that targets it. VMs ask for a slot by signal, are granted
 * one by signal, and give it back when their conversion ends. One long-lived workflow per account+region
 * (ID from common/workflow-ids.ts: `vmconvoy-quota/<EC2 endpoint or aws>/<region>`), continued-as-new to keep its history short.
 *
 * Slots are held by runs, not workflow IDs: a VM workflow terminated while holding one never gives it
 * back, and its `retry` is a new run of the same ID. So the quota checks its holders' runs every few
 * minutes (at once when a new run of a holder's ID asks) and takes back the slot of a run that has ended.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SHORT_HEARTBEAT_TIMEOUT } from './activity-profiles';
import type { ConversionQuotaInput, SlotHolder, SlotRequest } from './messages';
import {
  acquireSlotSignal,
  quotaStateQuery,
  releaseSlotSignal,
  setQuotaLimitSignal,
  slotGrantedSignal,
} from './messages';
import { QUOTA_GRANTS_AT_ONCE_PATCH, QUOTA_HOLDER_RUNS_PATCH } from './versions';

/** Grants per run before continuing as new; each grant costs a few events. */
const GRANTS_PER_RUN = 500;

/**
 * A conversion takes tens of minutes, so a slot lost for two more is cheap, and a check costs about ten
 * history events: a day of checks fits well inside one run's history.
 */
export const DEFAULT_HOLDER_CHECK_SECONDS = 120;

/** The quota runs on the control queue, whose workers serve this activity (common/task-queues.ts). */
const holderCheck = proxyActivities<Pick<Activities, 'workflowRunStates'>>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  // A check that cannot run now is simply tried again at the next interval.
  retry: { initialInterval: '2 seconds', maximumInterval: '10 seconds', maximumAttempts: 3 },
  summary: 'check that the slot holders still run',
});

const holderOf = (entry: string | SlotHolder): SlotHolder =>
  typeof entry === 'string' || entry.runId === undefined
    ? { workflowId: typeof entry === 'string' ? entry : entry.workflowId }
    : { workflowId: entry.workflowId, runId: entry.runId };

/** A request (or release) names this entry: same workflow ID, and same run where both name one. */
const names = (request: SlotRequest, entry: SlotHolder): boolean =>
  request.workflowId === entry.workflowId &&
  (request.runId === undefined || entry.runId === undefined || request.runId === entry.runId);

export async function conversionQuotaWorkflow(input: ConversionQuotaInput): Promise<void> {
  let limit = input.limit;
  let holders = (input.holders ?? []).map(holderOf);
  let waiting = (input.waiting ?? []).map(holderOf);
  const holderCheckSeconds = Math.max(1, Math.round(input.holderCheckSeconds ?? DEFAULT_HOLDER_CHECK_SECONDS));
  let grants = 0;
  const inFlight = metricMeter.createGauge(
    'vmconvoy_conversions_in_flight',
    'int',
    '1',
    'Conversion slots held, per account and region'
  );
  const publish = (): void => inFlight.set(holders.length, { quota: workflowInfo().workflowId });

  /** Grant signals sent and not yet delivered. */
  let granting = 0;
  /** Tells `entry` it holds a slot; a run that is gone (terminated) gives it straight back. */
  const deliver = (entry: SlotHolder): Promise<void> => {
    granting += 1;
    return getExternalWorkflowHandle(entry.workflowId, entry.runId)
      .signal(slotGrantedSignal)
      .catch(() => {
        holders = holders.filter((h) => h !== entry);
        publish();
      })
      .finally(() => {
        granting -= 1;
      });
  };
  const grant = (entry: SlotHolder): Promise<void> => {
    holders.push(entry);
    grants += 1;
    publish();
    return deliver(entry);
  };

  /**
   * Holders tracked by run and checked for liveness. Decided by the patch marker at the first point this
   * code runs live, so a quota running from before keeps its recorded behaviour on replay, then switches.
   */
  let byRun = false;
  let checkSoon = false;
  let checking = false;
  const checkHolders = async (): Promise<void> => {
    for (;;) {
      await condition(() => holders.length > 0);
      await condition(() => checkSoon, holderCheckSeconds * 1000);
      checkSoon = false;
      const checked = [...holders];
      if (checked.length === 0) continue;
      checking = true;
      try {
        const states = await holderCheck.workflowRunStates(checked);
        // Entries by identity: one released or re-granted meanwhile is another entry, left alone.
        const ended = new Set(checked.filter((_, i) => states[i] !== 'running'));
        if (ended.size > 0) {
          holders = holders.filter((h) => !ended.has(h));
          publish();
        }
      } catch {
        // Describing failed (server busy): the next interval checks again.
      } finally {
        checking = false;
      }
    }
  };
  const tracksRuns = (): boolean => {
    if (!byRun && patched(QUOTA_HOLDER_RUNS_PATCH)) {
      byRun = true;
      void checkHolders();
    }
    return byRun;
  };
  tracksRuns();

  setHandler(acquireSlotSignal, (request) => {
    if (!tracksRuns()) {
      // By workflow ID, as recorded before runs were tracked. Duplicates (a retried activity) are harmless.
      const { workflowId } = request;
      if (!holders.some((h) => h.workflowId === workflowId) && !waiting.some((h) => h.workflowId === workflowId))
        waiting.push({ workflowId });
      return;
    }
    const held = holders.find((h) => names(request, h));
    const queued = waiting.find((h) => names(request, h));
    if (held && held.runId === undefined && request.runId !== undefined) {
      // A slot recorded before runs were tracked, asked for by the newest run of its ID: that run holds it
      // now, and is told so (the grant may have gone to an earlier run of the ID).
      held.runId = request.runId;
      void deliver(held);
    } else if (queued && queued.runId === undefined) {
      queued.runId = request.runId;
    } else if (!held && !queued) {
      waiting.push(holderOf(request));
      // Another run of a holder's ID asks: only one run of an ID runs at a time, so one of the two has ended.
      if (holders.some((h) => h.workflowId === request.workflowId)) checkSoon = true;
    }
  });
  setHandler(releaseSlotSignal, (request) => {
    const released = tracksRuns()
      ? (h: SlotHolder) => names(request, h)
      : (h: SlotHolder) => h.workflowId === request.workflowId;
    holders = holders.filter((h) => !released(h));
    waiting = waiting.filter((h) => !released(h));
    publish();
  });
  setHandler(setQuotaLimitSignal, (newLimit) => {
    if (Number.isInteger(newLimit) && newLimit >= 1) limit = newLimit;
  });
  setHandler(quotaStateQuery, () => ({
    limit,
    holders: holders.map((h) => h.workflowId),
    waiting: waiting.map((h) => h.workflowId),
    ...(byRun ? { holderRuns: holders.map(holderOf), waitingRuns: waiting.map(holderOf), holderCheckSeconds } : {}),
  }));

  for (;;) {
    await condition(
      () =>
        (waiting.length > 0 && holders.length < limit) ||
        workflowInfo().continueAsNewSuggested ||
        grants >= GRANTS_PER_RUN
    );
    if (workflowInfo().continueAsNewSuggested || grants >= GRANTS_PER_RUN) {
      // Every grant delivered (or its slot returned), and no check half done, before the state moves on.
      await condition(() => granting === 0 && !checking && allHandlersFinished());
      await continueAsNew<typeof conversionQuotaWorkflow>(
        byRun
          ? { limit, holders, waiting, holderCheckSeconds }
          : {
              limit,
              holders: holders.map((h) => h.workflowId),
              waiting: waiting.map((h) => h.workflowId),
            }
      );
    }
    if (patched(QUOTA_GRANTS_AT_ONCE_PATCH)) {
      // Every free slot at once: waiting for each grant's delivery before the next made a busy quota grant
      // a few slots per second, however many were free.
      while (waiting.length > 0 && holders.length < limit) void grant(waiting.shift()!);
      continue;
    }
    const next = waiting.shift();
    if (next === undefined) continue;
    await grant(next);
  }
}
