/**
 * Activities the fleet workflow needs: load one inventory page from the staging bucket, and look up the
 * state of VM workflows (a relaunched batch finds VMs an earlier run started; a periodic reconcile finds
 * VMs an operator terminated, which never signal their fleet). The conversion quota, which runs beside the
 * fleet on the control queue, looks up its slot holders' runs the same way.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { getClient } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { InventoryPageInput, InventoryRow } from '../common/contracts/fleet';
import {
  fetchInventoryPage,
  inventoryPageUri,
  InventoryPageInvalidError,
  parseInventoryPage,
} from '../common/inventory-store';
import { FailureType } from '../common/failures';
import { ApplicationFailure } from '@temporalio/common';
import { awsCall } from './aws-call';

/** A stored page or index that is not what the CLI wrote: the batch stops, saying how to store it anew. */
function inventoryInvalid(err: InventoryPageInvalidError): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `${err.message}. The stored inventory was changed after \`vmconvoy start\`; start the batch again from the CSV (vmconvoy start --batch NAME FILE) to store it anew.`,
    FailureType.InventoryInvalid
  );
}

export type VmWorkflowState = 'running' | 'completed' | 'failed' | 'cancelled' | 'missing';

export function createFleetActivities(s3: S3Client, bucket: string) {
  return {
    async loadInventoryPage(input: InventoryPageInput): Promise<InventoryRow[]> {
      const text = await awsCall(
        { operation: `loading inventory page ${input.page}`, bucket, service: 'S3' },
        (abortSignal) => fetchInventoryPage(s3, bucket, input, abortSignal),
        (err) => {
          // The index was changed in the bucket: the same verdict as a changed page.
          if (err instanceof InventoryPageInvalidError) throw inventoryInvalid(err);
          return undefined;
        }
      );
      try {
        return parseInventoryPage(text, inventoryPageUri(bucket, input));
      } catch (err) {
        if (err instanceof InventoryPageInvalidError) throw inventoryInvalid(err);
        throw err;
      }
    },

    /** State of each VM workflow by ID; terminated and timed-out runs count as failed. */
    async vmWorkflowStates(workflowIds: string[]): Promise<Record<string, VmWorkflowState>> {
      const out: Record<string, VmWorkflowState> = {};
      for (const id of workflowIds) out[id] = await workflowRunState({ workflowId: id });
      return out;
    },

    workflowRunStates,
  };
}

/** One workflow run: a given run of an ID, or (no run ID) whichever run of the ID is the latest. */
export interface WorkflowRunRef {
  workflowId: string;
  runId?: string;
}

/**
 * State of each run, in the order given. The conversion quota checks its holders with it: a holder whose
 * run ended without giving its slot back (terminated, timed out, or a run replaced by a `retry`) is not
 * `running`, and its slot goes back to the pool.
 */
export async function workflowRunStates(runs: WorkflowRunRef[]): Promise<VmWorkflowState[]> {
  const out: VmWorkflowState[] = [];
  for (const run of runs) out.push(await workflowRunState(run));
  return out;
}

async function workflowRunState({ workflowId, runId }: WorkflowRunRef): Promise<VmWorkflowState> {
  try {
    const { status } = await getClient().workflow.getHandle(workflowId, runId).describe();
    return status.name === 'RUNNING'
      ? 'running'
      : status.name === 'COMPLETED'
        ? 'completed'
        : status.name === 'CANCELLED'
          ? 'cancelled'
          : 'failed';
  } catch (err) {
    // Never existed, or its history is past the namespace's retention: either way nothing of it runs.
    if (err instanceof WorkflowNotFoundError) return 'missing';
    throw err;
  }
}
