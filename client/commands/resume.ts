/** `vmconvoy resume <batch>`: start VMs again after a pause (operator, failure budget or canary). */
import type { Client } from '@temporalio/client';
import { resumeFleetSignal } from '../../workflows/messages';
import { runningFleet } from './fleet-handle';

export interface ResumeResult {
  batch: string;
  paused: false;
}

export async function resumeCommand(client: Client, batch: string): Promise<ResumeResult> {
  const { handle } = await runningFleet(client, batch);
  await handle.signal(resumeFleetSignal);
  return { batch, paused: false };
}
