/**
 * `vmconvoy cancel <batch> [--vm NAME]`: cancel the whole batch (the fleet cancels its running VMs, each of
 * which cancels its conversion task and deletes its uploaded objects), or one VM.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ExitError } from '../errors';
import { runningFleet } from './fleet-handle';

export interface CancelResult {
  batch: string;
  /** The one VM cancelled; absent = the whole batch. */
  vm?: string;
  cancelRequested: true;
}

export async function cancelCommand(client: Client, batch: string, vm?: string): Promise<CancelResult> {
  if (vm === undefined) {
    const { handle } = await runningFleet(client, batch);
    await handle.cancel();
    return { batch, cancelRequested: true };
  }
  const handle = client.workflow.getHandle(`${batch}/${vm}`);
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) {
      throw new ExitError(1, `batch "${batch}" has no VM "${vm}" started yet; \`vmconvoy status ${batch}\` lists them`);
    }
    throw err;
  });
  if (description.status.name !== 'RUNNING') {
    throw new ExitError(1, `VM "${vm}" of batch "${batch}" already ended (${description.status.name.toLowerCase()}); nothing to cancel`);
  }
  await handle.cancel();
  return { batch, vm, cancelRequested: true };
}
