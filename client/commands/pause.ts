/** `vmconvoy pause <batch>`: start no new VMs; the running ones go on. */
import type { Client } from '@temporalio/client';
import { pauseFleetSignal } from '../../workflows/messages';
import { BATCH_ARGUMENT, jsonOption } from '../options';
import { PAUSE_VIEW } from '../output/messages';
import type { CommandSpec } from './command';
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

export const pauseSpec: CommandSpec<{ reason?: string; json?: boolean }, PauseResult> = {
  name: 'pause',
  summary: 'start no new VMs; the running ones go on',
  arguments: [BATCH_ARGUMENT],
  options: [{ flags: '--reason <text>', description: 'shown by status' }, jsonOption()],
  examples: ['vmconvoy pause wave-a --reason "change freeze"'],
  run: async ({ args: [batch], opts }, ctx) => pauseCommand(await ctx.client(), batch!, opts.reason),
  view: PAUSE_VIEW,
};
