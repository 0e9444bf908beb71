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
import { AwsClientPool } from '../../common/aws/client-pool';
import type { AwsTarget } from '../../common/aws/targets';
import { targetKey } from '../../common/aws/targets';
import { fleetStatusQuery } from '../../workflows/messages';
import type { VmconvoyConfig } from '../../common/config';
import type { RollbackBatchInput, RollbackInput, RollbackItem, RollbackResult } from '../../common/contracts/rollback';
import { withUnrecorded } from '../../common/contracts/rollback';
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

/**
 * --- accounts (issue 20): every account+Region the batch imported into, as its fleet resolved them (null =
 * the worker's own), or undefined when the fleet is not known (any more) or predates accounts: then only the
 * worker's own account and Region are looked at, as before.
 */
export async function batchTargets(
  client: Client,
  config: VmconvoyConfig,
  batch: string
): Promise<Array<AwsTarget | null> | undefined> {
  let accounts;
  try {
    accounts = (await client.workflow.getHandle(fleetWorkflowId(batch)).query(fleetStatusQuery)).accounts;
  } catch {
    return undefined;
  }
  if (!accounts || accounts.length === 0) return undefined;
  const targets = new Map<string, AwsTarget | null>();
  for (const a of accounts) {
    const own = a.profile === undefined && a.region === config.aws.region;
    const t: AwsTarget | null = own ? null : { ...(a.profile ? { profile: a.profile } : {}), region: a.region };
    targets.set(targetKey(t ?? undefined), t);
  }
  return [...targets.values()];
}

/** What a rollback would do, read from the records and EC2 by this process; nothing is changed. */
export async function previewRollback(
  config: VmconvoyConfig,
  input: RollbackInput,
  targets: Array<AwsTarget | null> | undefined
): Promise<RollbackResult> {
  const aws = createAwsClients(config.aws);
  const pool = new AwsClientPool(config.aws, aws);
  try {
    let items: RollbackItem[] = [];
    const unrecorded: RollbackItem[] = [];
    for (const t of targets ?? [null]) {
      const place = await pool.of(t ?? undefined);
      const deps = {
        ec2: place.clients.ec2,
        s3: place.clients.s3,
        bucket: place.bucket,
        keyPrefix: config.aws.keyPrefix,
      };
      const where = t ? { ...input, aws: t } : input;
      const scan = await scanRollback(deps, where);
      for (const { vm, legacyLayout } of scan.vms)
        items.push(...(await rollbackVm(deps, { ...where, vm, legacyLayout, execute: false })).items);
      unrecorded.push(...scan.unrecorded);
    }
    items = withUnrecorded(items, unrecorded);
    return { ...target(input), executed: false, items, actions: items.filter((i) => i.action).length };
  } finally {
    pool.destroy();
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
  input: RollbackInput,
  targets: Array<AwsTarget | null> | undefined
): Promise<RollbackResult> {
  // A batch (or VM) still running would import again behind the rollback's back.
  const busy = input.vm ? vmWorkflowId(input.batch, input.vm) : fleetWorkflowId(input.batch);
  if (await isRunning(client, busy)) {
    const what = input.vm ? `VM ${input.vm} of batch ${input.batch} is` : `batch ${input.batch} is`;
    throw new ExitError(1, `${what} still running: \`vmconvoy cancel ${input.batch}\` first, then roll back`);
  }
  const workflowId = rollbackWorkflowId(input.batch, input.vm);
  const attached = await isRunning(client, workflowId);
  const args: RollbackBatchInput = {
    ...input,
    awsApiTaskQueue: awsApiTaskQueueOf(config.temporal),
    ...(targets ? { targets } : {}),
  };
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
    const client = await ctx.client();
    const targets = await batchTargets(client, config, input.batch);
    return opts.yes ? executeRollback(client, config, input, targets) : previewRollback(config, input, targets);
  },
  view: ROLLBACK_VIEW,
};
