/**
 * Asks the account+region's conversion-quota workflow for a slot. Signal-with-start, so the first VM of
 * any batch creates the quota workflow and later ones join it; a retried request is deduplicated there.
 */
import { activityInfo, getClient } from '@temporalio/activity';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import type { SlotRequestInput } from '../common/contracts/migration';
import { acquireSlotSignal } from '../workflows/messages';

/** The quota workflow runs on the control queue the fleet names, else on this activity's queue. */
export function createSlotActivities() {
  return {
    async requestConversionSlot(input: SlotRequestInput): Promise<void> {
      await getClient().workflow.signalWithStart('conversionQuotaWorkflow', {
        workflowId: input.quota.workflowId,
        taskQueue: input.quota.taskQueue ?? activityInfo().taskQueue,
        args: [{ limit: input.quota.limit }],
        signal: acquireSlotSignal,
        signalArgs: [{ workflowId: input.workflowId }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        staticSummary: `conversion slots for ${input.quota.workflowId.replace(/^vmconvoy-quota\//, '')}`,
      });
    },
  };
}
