/**
 * `vmconvoy rollback <batch> [--vm NAME] [--yes] [--force]`: what the batch created in EC2 (instances,
 * volumes, conversion tasks still open), from each VM's resource record checked against EC2 now; with
 * `--yes`, the rollback workflow (workflows/rollback-batch.ts) removes it and this waits for its result.
 * Without `--yes` nothing changes: the preview reads the same records with the same rules
 * (activities/rollback.ts), from this process.
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowNotFoundError } from '@temporalio/client';
import { rollbackVm, scanRollback } from '../../activities/rollback';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import type { VmconvoyConfig } from '../../common/config';
import type { RollbackBatchInput, RollbackInput, RollbackItem, RollbackResult } from '../../common/contracts/rollback';
import { awsApiTaskQueueOf } from '../../common/task-queues';
import { fleetWorkflowId, rollbackWorkflowId, vmWorkflowId } from '../../common/workflow-ids';
import { migrationBatchKey } from '../../workflows/search-attributes';
import { ExitError } from '../errors';
import { BATCH_ARGUMENT, jsonOption } from '../options';
import { ROLLBACK_VIEW } from '../output/rollback';
import { cliConfig } from '../settings';
import type { CommandSpec } from './command';

interface RollbackFlags {
  vm?: string;
  yes?: boolean;
  force?: boolean;
  json?: boolean;
}

/** What a rollback would do, read from the records and EC2 by this process; nothing is changed. */
export async function previewRollback(config: VmconvoyConfig, input: RollbackInput): Promise<RollbackResult> {
  const aws = createAwsClients(config.aws);
  try {
    const deps = { ec2: aws.ec2, s3: aws.s3, bucket: config.aws.bucket, keyPrefix: config.aws.keyPrefix };
    const scan = await scanRollback(deps, input);
    const items: RollbackItem[] = [];
    for (const { vm, legacyLayout } of scan.vms)
      items.push(...(await rollbackVm(deps, { ...input, vm, legacyLayout, execute: false })).items);
    items.push(...scan.unrecorded);
    return { ...target(input), executed: false, items, actions: items.filter((i) => i.action).length };
  } finally {
    destroyAwsClients(aws);
  }
}

function target(input: RollbackInput): Pick<RollbackResult, 'batch' | 'vm' | 'force'> {
  return { batch: input.batch, vm: input.vm, force: input.force };
}

async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Starts the rollback workflow (or attaches to the one running) and waits for its result. */
export async function executeRollback(
  client: Client,
  config: VmconvoyConfig,
  input: RollbackInput
): Promise<RollbackResult> {
  // A batch (or VM) still running would import again behind the rollback's back.
  const busy = input.vm ? vmWorkflowId(input.batch, input.vm) : fleetWorkflowId(input.batch);
  if (await isRunning(client, busy)) {
    const what = input.vm ? `VM ${input.vm} of batch ${input.batch} is` : `batch ${input.batch} is`;
    throw new ExitError(1, `${what} still running: \`vmconvoy cancel ${input.batch}\` first, then roll back`);
  }
  const workflowId = rollbackWorkflowId(input.batch, input.vm);
  const attached = await isRunning(client, workflowId);
  const args: RollbackBatchInput = { ...input, awsApiTaskQueue: awsApiTaskQueueOf(config.temporal) };
  const handle = await client.workflow.start('rollbackBatchWorkflow', {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [args],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [{ key: migrationBatchKey, value: input.batch }],
    staticSummary: `rollback of ${input.vm ? `VM ${input.vm} of ` : ''}batch ${input.batch}${input.force ? ' (--force)' : ''}`,
  });
  const result = (await handle.result()) as RollbackResult;
  return { ...result, workflowId, attached };
}

export const rollbackSpec: CommandSpec<RollbackFlags, RollbackResult> = {
  name: 'rollback',
  summary:
    'show what the batch created in EC2 (instances, volumes, open conversion tasks); with --yes terminate and delete them',
  arguments: [BATCH_ARGUMENT],
  options: [
    { flags: '--vm <name>', description: 'only this VM of the batch' },
    {
      flags: '--yes',
      description: 'do it: cancel open conversion tasks, terminate the instances, delete their volumes',
    },
    {
      flags: '--force',
      description: 'also terminate instances started or changed after vmconvoy stopped them (left alone otherwise)',
    },
    jsonOption(),
  ],
  examples: [
    'vmconvoy rollback wave-a',
    'vmconvoy rollback wave-a --yes',
    'vmconvoy rollback wave-a --vm web-01 --yes',
  ],
  notes:
    'Only what vmconvoy recorded creating is touched: an instance tagged for the batch that no record names is listed, never terminated.',
  async run({ args: [batch], opts }, ctx) {
    const config = cliConfig(ctx.env);
    const { namespace } = await ctx.connection();
    const input: RollbackInput = { batch: batch!, vm: opts.vm, namespace, force: opts.force ?? false };
    return opts.yes ? executeRollback(await ctx.client(), config, input) : previewRollback(config, input);
  },
  view: ROLLBACK_VIEW,
};
