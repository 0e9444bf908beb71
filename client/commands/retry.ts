/**
 * `vmconvoy retry <batch>`: run the failed and cancelled VMs again (they upload again: a failed VM's parts are deleted). A running
 * batch re-queues them (the `retry` update); a batch that already ended is started again from its stored
 * input, and its completed VMs are never run twice.
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import type { FleetInput } from '../../common/contracts/fleet';
import { retryFleetUpdate } from '../../workflows/messages';
import { ExitError } from '../errors';
import { BATCH_ARGUMENT, jsonOption } from '../options';
import { RETRY_VIEW } from '../output/messages';
import type { CommandSpec } from './command';
import { fleetHandle, rootMessage } from './fleet-handle';

export interface RetryResult {
  batch: string;
  /** `requeued`: the running batch took the VMs back; `restarted`: the ended batch runs again. */
  mode: 'requeued' | 'restarted';
  /** VMs re-queued (requeued mode only). */
  requeued?: number;
}

export async function retryCommand(client: Client, batch: string): Promise<RetryResult> {
  const { handle, description, running } = await fleetHandle(client, batch);
  if (running) {
    try {
      return { batch, mode: 'requeued', requeued: await handle.executeUpdate(retryFleetUpdate) };
    } catch (err) {
      throw new ExitError(1, `batch "${batch}" refused the retry: ${rootMessage(err)}`);
    }
  }
  const input = description.memo?.fleetInput as FleetInput | undefined;
  if (!input)
    throw new ExitError(
      1,
      `batch "${batch}" has no stored input; run \`vmconvoy start <inventory.csv> --batch ${batch}\` again`
    );
  await client.workflow.start('migrateFleetWorkflow', {
    workflowId: batch,
    taskQueue: description.taskQueue,
    args: [{ ...input, progress: undefined }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: description.typedSearchAttributes,
    memo: description.memo,
    staticSummary: `batch ${batch}: ${input.total} VMs (retry)`,
  });
  return { batch, mode: 'restarted' };
}

export const retrySpec: CommandSpec<{ json?: boolean }, RetryResult> = {
  name: 'retry',
  summary:
    'run the failed and cancelled VMs again (completed VMs never run twice; an intact instance an earlier run imported is adopted)',
  arguments: [BATCH_ARGUMENT],
  options: [jsonOption()],
  examples: ['vmconvoy retry wave-a'],
  run: async ({ args: [batch] }, ctx) => retryCommand(await ctx.client(), batch!),
  view: RETRY_VIEW,
};
