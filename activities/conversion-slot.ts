/**
 * Asks the account+region's conversion-quota workflow for a slot. Update-with-start (signal-with-start
 * where the update cannot be used), so the first VM of any batch creates the quota workflow and later ones
 * join it; a retried request is deduplicated there. The answer is whether the slot is held already (a
 * lease) or a grant signal will follow.
 */
import { activityInfo, getClient } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowIdConflictPolicy, WorkflowUpdateFailedError } from '@temporalio/client';
import type { SlotRequestInput } from '../common/contracts/migration';
import type { ConversionQuotaInput } from '../workflows/messages';
import type { SlotRequest } from '../workflows/messages';
import { acquireSlotSignal, requestSlotUpdate } from '../workflows/messages';

/** gRPC codes a server answers with when it does not offer an operation (or it is switched off). */
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNIMPLEMENTED = 12;

export interface SlotActivityOptions {
  /** How often a quota workflow this activity starts checks that its holders still run. @default the workflow's */
  holderCheckSeconds?: number;
}

/** The quota workflow runs on the control queue the fleet names, else on this activity's queue. */
export function createSlotActivities(options: SlotActivityOptions = {}) {
  return {
    /** True: the asking run holds a slot now. False: it is queued, and the quota signals slotGranted. */
    async requestConversionSlot(input: SlotRequestInput): Promise<boolean> {
      const start: ConversionQuotaInput = { limit: input.quota.limit };
      if (options.holderCheckSeconds !== undefined) start.holderCheckSeconds = options.holderCheckSeconds;
      const quotaStart = {
        workflowId: input.quota.workflowId,
        taskQueue: input.quota.taskQueue ?? activityInfo().taskQueue,
        args: [start] as [ConversionQuotaInput],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        staticSummary: `conversion slots for ${input.quota.workflowId.replace(/^vmconvoy-quota\//, '')}`,
      };
      const request = requestOf(input);
      const client = getClient();
      // A lease is held by a run: a request for no particular run (another workflow asking) waits in line.
      if (request.runId !== undefined) {
        try {
          return await client.workflow.executeUpdateWithStart(requestSlotUpdate, {
            args: [request],
            startWorkflowOperation: new WithStartWorkflowOperation('conversionQuotaWorkflow', quotaStart),
          });
        } catch (err) {
          if (!leasesUnsupported(err)) throw err;
        }
      }
      await client.workflow.signalWithStart('conversionQuotaWorkflow', {
        ...quotaStart,
        signal: acquireSlotSignal,
        signalArgs: [request],
      });
      return false;
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

/**
 * The quota cannot answer with a lease: its run is on a worker of the code from before leases (the update
 * is rejected as unknown; the handler itself never fails), or the server does not take update-with-start.
 * The signal then queues the request as before. Anything else (unavailable, timed out) is the activity's
 * to retry: a retried update that was granted meanwhile finds its slot held and answers true again.
 */
function leasesUnsupported(err: unknown): boolean {
  if (err instanceof WorkflowUpdateFailedError) return true;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === GRPC_UNIMPLEMENTED || e.code === GRPC_PERMISSION_DENIED) return true;
  }
  return false;
}
