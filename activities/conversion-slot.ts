/**
 * Asks the account+region's conversion-quota workflow for a slot. Signal-with-start, so the first VM of
 * any batch creates the quota workflow and later ones join it; a retried request is deduplicated there.
 */
import { activityInfo, getClient } from '@temporalio/activity';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import type { SlotRequestInput } from '../common/contracts/migration';
import type { ConversionQuotaInput } from '../workflows/messages';
import type { SlotRequest } from '../workflows/messages';
import { acquireSlotSignal } from '../workflows/messages';

export interface SlotActivityOptions {
  /** How often a quota workflow this activity starts checks that its holders still run. @default the workflow's */
  holderCheckSeconds?: number;
}

/** The quota workflow runs on the control queue the fleet names, else on this activity's queue. */
export function createSlotActivities(options: SlotActivityOptions = {}) {
  return {
    async requestConversionSlot(input: SlotRequestInput): Promise<void> {
      const start: ConversionQuotaInput = { limit: input.quota.limit };
      if (options.holderCheckSeconds !== undefined) start.holderCheckSeconds = options.holderCheckSeconds;
      await getClient().workflow.signalWithStart('conversionQuotaWorkflow', {
        workflowId: input.quota.workflowId,
        taskQueue: input.quota.taskQueue ?? activityInfo().taskQueue,
        args: [start],
        signal: acquireSlotSignal,
        signalArgs: [requestOf(input)],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        staticSummary: `conversion slots for ${input.quota.workflowId.replace(/^vmconvoy-quota\//, '')}`,
      });
    },
  };
}

/**
 * The slot is asked for by the run that scheduled this activity (the VM's own request, or its
 * writeManifest): the quota grants to that run, and takes the slot back when that run is found ended.
 */
function requestOf(input: SlotRequestInput): SlotRequest {
  const caller = activityInfo().workflowExecution;
  if (caller?.workflowId !== input.workflowId) return { workflowId: input.workflowId };
  return { workflowId: input.workflowId, runId: caller.runId };
}
