/**
 * The conversion limit of an AWS account+region: how many ImportInstance conversions may run at once, held
 * by that account+region's conversion-quota workflow and shared by every batch that targets it. A batch
 * started with `--max-conversions` sets it; one started without keeps whatever it is (another batch may
 * have raised it on purpose).
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
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

/** The limit in force, or undefined when no quota workflow runs for the account+region yet. */
export async function getConversionLimit(client: Client, workflowId: string): Promise<number | undefined> {
  try {
    return (await client.workflow.getHandle(workflowId).query(quotaStateQuery)).limit;
  } catch {
    return undefined;
  }
}
