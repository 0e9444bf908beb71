/**
 * conversionQuotaWorkflow: the count of concurrent conversions EC2 allows one account in one region
 * (about 5 by default), shared by every batch that targets it. VMs ask for a slot by signal, are granted
 * one by signal, and give it back when their conversion ends. One long-lived workflow per account+region
 * (ID from common/workflow-ids.ts: `vmconvoy-quota/<EC2 endpoint or aws>/<region>`), continued-as-new to keep its history short.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  metricMeter,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { QuotaState } from './messages';
import {
  acquireSlotSignal,
  quotaStateQuery,
  releaseSlotSignal,
  setQuotaLimitSignal,
  slotGrantedSignal,
} from './messages';
import { QUOTA_GRANTS_AT_ONCE_PATCH } from './versions';

export interface ConversionQuotaInput {
  limit: number;
  holders?: string[];
  waiting?: string[];
}

/** Grants per run before continuing as new; each grant costs a few events. */
const GRANTS_PER_RUN = 500;

export async function conversionQuotaWorkflow(input: ConversionQuotaInput): Promise<void> {
  const state: QuotaState = {
    limit: input.limit,
    holders: [...(input.holders ?? [])],
    waiting: [...(input.waiting ?? [])],
  };
  let grants = 0;
  const inFlight = metricMeter.createGauge(
    'vmconvoy_conversions_in_flight',
    'int',
    '1',
    'Conversion slots held, per account and region'
  );
  const publish = (): void => inFlight.set(state.holders.length, { quota: workflowInfo().workflowId });

  setHandler(acquireSlotSignal, ({ workflowId }) => {
    // Duplicate requests (a retried activity) are harmless.
    if (!state.holders.includes(workflowId) && !state.waiting.includes(workflowId)) state.waiting.push(workflowId);
  });
  setHandler(releaseSlotSignal, ({ workflowId }) => {
    state.holders = state.holders.filter((id) => id !== workflowId);
    state.waiting = state.waiting.filter((id) => id !== workflowId);
    publish();
  });
  setHandler(setQuotaLimitSignal, (limit) => {
    if (Number.isInteger(limit) && limit >= 1) state.limit = limit;
  });
  setHandler(quotaStateQuery, () => state);

  /** Grant signals sent and not yet delivered. */
  let granting = 0;
  const grant = (next: string): Promise<void> => {
    state.holders.push(next);
    grants += 1;
    publish();
    granting += 1;
    return getExternalWorkflowHandle(next)
      .signal(slotGrantedSignal)
      .catch(() => {
        // The VM workflow is gone (terminated): its slot goes back to the pool.
        state.holders = state.holders.filter((id) => id !== next);
        publish();
      })
      .finally(() => {
        granting -= 1;
      });
  };

  for (;;) {
    await condition(
      () =>
        (state.waiting.length > 0 && state.holders.length < state.limit) ||
        workflowInfo().continueAsNewSuggested ||
        grants >= GRANTS_PER_RUN
    );
    if (workflowInfo().continueAsNewSuggested || grants >= GRANTS_PER_RUN) {
      // Every grant delivered (or its slot returned) before the state moves to the next run.
      await condition(() => granting === 0 && allHandlersFinished());
      await continueAsNew<typeof conversionQuotaWorkflow>(state);
    }
    if (patched(QUOTA_GRANTS_AT_ONCE_PATCH)) {
      // Every free slot at once: waiting for each grant's delivery before the next made a busy quota grant
      // a few slots per second, however many were free.
      while (state.waiting.length > 0 && state.holders.length < state.limit) void grant(state.waiting.shift()!);
      continue;
    }
    const next = state.waiting.shift();
    if (next === undefined) continue;
    await grant(next);
  }
}
