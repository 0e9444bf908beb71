/**
 * `vmconvoy cancel <batch> [--vm NAME]`: cancel the whole batch (the fleet cancels its running VMs, each of
 * which cancels its conversion task and deletes its uploaded objects), or one VM.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ExitError } from '../errors';
import { BATCH_ARGUMENT, jsonOption } from '../options';
import { CANCEL_VIEW } from '../output/messages';
import type { CommandSpec } from './command';
import { runningFleet } from './fleet-handle';
import { vmWorkflowId } from '../../common/workflow-ids';

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
  const handle = client.workflow.getHandle(vmWorkflowId(batch, vm));
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) {
      throw new ExitError(1, `batch "${batch}" has no VM "${vm}" started yet; \`vmconvoy status ${batch}\` lists them`);
    }
    throw err;
  });
  if (description.status.name !== 'RUNNING') {
    throw new ExitError(
      1,
      `VM "${vm}" of batch "${batch}" already ended (${description.status.name.toLowerCase()}); nothing to cancel`
    );
  }
  await handle.cancel();
  return { batch, vm, cancelRequested: true };
}

export const cancelSpec: CommandSpec<{ vm?: string; json?: boolean }, CancelResult> = {
  name: 'cancel',
  summary: 'cancel the batch, or one VM with --vm: conversion tasks are cancelled and uploaded objects deleted',
  arguments: [BATCH_ARGUMENT],
  options: [{ flags: '--vm <name>', description: 'cancel only this VM' }, jsonOption()],
  examples: ['vmconvoy cancel wave-a --vm web-01', 'vmconvoy cancel wave-a'],
  run: async ({ args: [batch], opts }, ctx) => cancelCommand(await ctx.client(), batch!, opts.vm),
  view: CANCEL_VIEW,
};
