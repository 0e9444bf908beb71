/** `vmconvoy resume <batch>`: start VMs again after a pause (operator, failure budget or canary). */
import type { Client } from '@temporalio/client';
import { resumeFleetSignal } from '../../workflows/messages';
import { BATCH_ARGUMENT, jsonOption } from '../options';
import { RESUME_VIEW } from '../output/messages';
import type { CommandSpec } from './command';
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

export const resumeSpec: CommandSpec<{ json?: boolean }, ResumeResult> = {
  name: 'resume',
  summary: 'start VMs again after a pause (by an operator, the failure budget or a failed canary)',
  arguments: [BATCH_ARGUMENT],
  options: [jsonOption()],
  examples: ['vmconvoy resume wave-a'],
  run: async ({ args: [batch] }, ctx) => resumeCommand(await ctx.client(), batch!),
  view: RESUME_VIEW,
};
