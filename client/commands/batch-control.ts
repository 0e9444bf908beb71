/** `pause`, `resume`, `cancel [--vm]`, `retry`, `set-limits`: messages to a running batch. */
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import type { FleetInput, FleetLimits, SetLimitsRequest } from '../../workflows/fleet-types';
import { pauseFleetSignal, resumeFleetSignal, retryFleetUpdate, setLimitsUpdate } from '../../workflows/messages';
import { ExitError } from '../errors';

async function runningFleet(client: Client, batch: string) {
  const handle = client.workflow.getHandle(batch);
  const d = await handle.describe().catch(() => {
    throw new ExitError(1, `no batch "${batch}" (start it with \`vmconvoy start <csv> --batch ${batch}\`)`);
  });
  return { handle, running: d.status.name === 'RUNNING', memo: d.memo };
}

export async function pauseCommand(client: Client, batch: string, reason?: string): Promise<string> {
  const { handle, running } = await runningFleet(client, batch);
  if (!running) throw new ExitError(1, `batch "${batch}" is not running`);
  await handle.signal(pauseFleetSignal, { reason });
  return `batch ${batch} paused: no new VMs start; running ones go on`;
}

export async function resumeCommand(client: Client, batch: string): Promise<string> {
  const { handle, running } = await runningFleet(client, batch);
  if (!running) throw new ExitError(1, `batch "${batch}" is not running`);
  await handle.signal(resumeFleetSignal);
  return `batch ${batch} resumed`;
}

export async function cancelCommand(client: Client, batch: string, vm?: string): Promise<string> {
  if (vm) {
    await client.workflow.getHandle(`${batch}/${vm}`).cancel().catch(() => {
      throw new ExitError(1, `no running VM "${vm}" in batch "${batch}"`);
    });
    return `VM ${vm} of batch ${batch}: cancellation requested (its conversion task is cancelled and its objects deleted)`;
  }
  const { handle } = await runningFleet(client, batch);
  await handle.cancel();
  return `batch ${batch}: cancellation requested; running VMs are cancelled and cleaned up`;
}

/** Running batch: re-queue its failed VMs. Finished batch: run it again (completed VMs are never re-run). */
export async function retryCommand(client: Client, batch: string): Promise<string> {
  const { handle, running, memo } = await runningFleet(client, batch);
  if (running) return `batch ${batch}: ${await handle.executeUpdate(retryFleetUpdate)} VMs re-queued`;
  const input = memo?.fleetInput as FleetInput | undefined;
  if (!input) throw new ExitError(1, `batch "${batch}" has no stored input; start it again with \`vmconvoy start\``);
  const d = await handle.describe();
  await client.workflow.start('migrateFleetWorkflow', {
    workflowId: batch,
    taskQueue: d.taskQueue,
    args: [{ ...input, progress: undefined }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: d.typedSearchAttributes,
    memo: d.memo,
  });
  return `batch ${batch} started again: failed and cancelled VMs run again, completed ones are kept`;
}

export async function setLimitsCommand(client: Client, batch: string, request: SetLimitsRequest): Promise<FleetLimits> {
  if (Object.values(request).every((v) => v === undefined)) throw new ExitError(1, 'give --max-uploads and/or --max-conversions');
  const { handle, running } = await runningFleet(client, batch);
  if (!running) throw new ExitError(1, `batch "${batch}" is not running`);
  try {
    return await handle.executeUpdate(setLimitsUpdate, { args: [request] });
  } catch (err) {
    throw new ExitError(1, (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
  }
}
