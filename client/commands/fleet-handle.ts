/** The fleet workflow of a batch, for the commands that message it. */
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ExitError } from '../errors';

export interface FleetHandle {
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
  running: boolean;
}

export async function fleetHandle(client: Client, batch: string): Promise<FleetHandle> {
  const handle = client.workflow.getHandle(batch);
  try {
    const description = await handle.describe();
    return { handle, description, running: description.status.name === 'RUNNING' };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new ExitError(1, `no batch "${batch}": start it with \`vmconvoy start <inventory.csv> --batch ${batch}\``);
    }
    throw err;
  }
}

export async function runningFleet(client: Client, batch: string): Promise<FleetHandle> {
  const fleet = await fleetHandle(client, batch);
  if (!fleet.running) {
    throw new ExitError(
      1,
      `batch "${batch}" is not running (it ended ${fleet.description.status.name.toLowerCase()}); see \`vmconvoy status ${batch}\``
    );
  }
  return fleet;
}

/** The message of an update's validation failure or a workflow's rejection, without the SDK's wrapping. */
export function rootMessage(err: unknown): string {
  let e = err as (Error & { cause?: unknown }) | undefined;
  while (e?.cause instanceof Error) e = e.cause;
  return e?.message ?? String(err);
}
