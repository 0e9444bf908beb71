/** `vmconvoy pause <batch>`: start no new VMs; the running ones go on. */
import type { Client } from '@temporalio/client';
import { pauseFleetSignal } from '../../workflows/messages';
import { runningFleet } from './fleet-handle';

export interface PauseResult {
  batch: string;
  paused: true;
  reason?: string;
}

export async function pauseCommand(client: Client, batch: string, reason?: string): Promise<PauseResult> {
  const { handle } = await runningFleet(client, batch);
  await handle.signal(pauseFleetSignal, { reason });
  return { batch, paused: true, reason };
}
