/**
 * The VM side of the conversion quota: ask the account+region's quota workflow for a slot (an activity
 * signal-with-starts it, so the first VM of any batch creates it), wait for the grant, give it back.
 */
import { condition, getExternalWorkflowHandle, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SHORT_HEARTBEAT_TIMEOUT } from './activity-profiles';
import { releaseSlotSignal, slotGrantedSignal } from './messages';

const slots = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds' },
  summary: 'ask the conversion quota for a slot',
});

/**
 * The request names this run (activities/conversion-slot.ts adds it): the quota grants to this run and
 * takes the slot back if this run ends without releasing it.
 * Resolves true once granted, false if the deadline passes first. `requested`: an earlier activity has
 * already queued this VM (writeManifest does); a grant that arrived meanwhile waits in the signal buffer.
 */
export async function acquireConversionSlot(
  quota: { workflowId: string; limit: number },
  deadline: number,
  requested = false
): Promise<boolean> {
  let granted = false;
  setHandler(slotGrantedSignal, () => {
    granted = true;
  });
  if (!requested) await slots.requestConversionSlot({ quota, workflowId: workflowInfo().workflowId });
  return condition(() => granted, Math.max(1, deadline - Date.now()));
}

/** Gives back the slot this run holds (by run: a later run of the same VM may hold or wait for another). */
export async function releaseConversionSlot(quotaWorkflowId: string): Promise<void> {
  const { workflowId, runId } = workflowInfo();
  try {
    await getExternalWorkflowHandle(quotaWorkflowId).signal(releaseSlotSignal, { workflowId, runId });
  } catch {
    // The quota workflow was terminated; a new one starts with no holders, so nothing is leaked.
  }
}
