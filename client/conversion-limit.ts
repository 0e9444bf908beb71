/**
 * The conversion limit of an AWS account+region: how many ImportInstance conversions may run at once, held
 * by that account+region's conversion-quota workflow and shared by every batch that targets it. A batch
 * started with `--max-conversions` sets it; one started without keeps whatever it is (another batch may
 * have raised it on purpose).
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowNotFoundError } from '@temporalio/client';
import { quotaStateQuery, setQuotaLimitSignal } from '../workflows/messages';

export interface QuotaLocation {
  workflowId: string;
  /** Where the quota workflow runs if this call has to start it (the control queue). */
  taskQueue: string;
}

/** Sets the limit, starting the quota workflow with it when there is none yet. */
export async function setConversionLimit(client: Client, quota: QuotaLocation, limit: number): Promise<void> {
  await client.workflow.signalWithStart('conversionQuotaWorkflow', {
    workflowId: quota.workflowId,
    taskQueue: quota.taskQueue,
    args: [{ limit }],
    signal: setQuotaLimitSignal,
    signalArgs: [limit],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `conversion slots for ${quota.workflowId.replace(/^vmconvoy-quota\//, '')}`,
  });
}

/** How long `start` waits for the quota workflow to answer (it needs a worker on the control queue). */
const QUERY_DEADLINE_MS = 5_000;

/**
 * The limit in force. `whenAbsent` when no quota workflow exists yet (the batch's first VM starts it with
 * that limit); null when it exists but did not answer in time (no worker serves the control queue yet).
 */
export async function getConversionLimit(
  client: Client,
  workflowId: string,
  whenAbsent: number
): Promise<number | null> {
  try {
    const state = await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      client.workflow.getHandle(workflowId).query(quotaStateQuery)
    );
    return state.limit;
  } catch (err) {
    return err instanceof WorkflowNotFoundError ? whenAbsent : null;
  }
}
