/**
 * `vmconvoy start <csv> --batch NAME`: validate (nothing is stored or started if anything is wrong), store
 * the inventory in the staging bucket, then start the batch's fleet workflow — or attach to it when it is
 * already running. A finished batch started again re-runs only what did not complete.
 */
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { createAwsClients } from '../../activities/aws-clients';
import { inventoryKeyFor, storeInventory } from '../../activities/inventory-store';
import type { FleetInput } from '../../workflows/fleet-types';
import { migrationBatchKey } from '../../workflows/search-attributes';
import { DEFAULT_SETTINGS, VM_NAME_PATTERN } from '../../workflows/types';
import { connectClient } from '../connect';
import { ExitError } from '../errors';
import { readInventory } from '../inventory/read-inventory';
import { cliConfig, uiUrl } from '../settings';
import { formatProblems } from './validate';

export interface StartOptions {
  batch: string;
  maxUploads?: number;
  maxConversions?: number;
  canary?: number;
  failureBudget?: number;
  dryRun?: boolean;
}

export interface StartResult {
  batch: string;
  vms: number;
  attached: boolean;
  uiLink: string;
}

export async function startCommand(csv: string, opts: StartOptions, env: NodeJS.ProcessEnv): Promise<StartResult> {
  if (!VM_NAME_PATTERN.test(opts.batch)) throw new ExitError(1, `--batch "${opts.batch}": use 1-64 characters of A-Z a-z 0-9 . _ -`);
  const config = cliConfig(env);
  const inventory = await readInventory(csv, { imageRoots: config.imageRoots });
  if (!inventory.ok) throw new ExitError(1, formatProblems(csv, inventory));
  const { client, namespace, close } = await connectClient(env);
  try {
    const inventoryKey = inventoryKeyFor(config.aws.keyPrefix, opts.batch);
    const { s3 } = createAwsClients(config.aws);
    await storeInventory(s3, config.aws.bucket, inventoryKey, inventory.rows);
    const input: FleetInput = {
      batch: opts.batch,
      inventoryKey,
      total: inventory.rows.length,
      limits: { maxUploads: opts.maxUploads ?? 4, maxConversions: opts.maxConversions ?? 5 },
      settings: { ...DEFAULT_SETTINGS, dryRun: opts.dryRun ?? false },
      canary: opts.canary ?? 0,
      failureBudgetPercent: opts.failureBudget,
      quotaWorkflowId: `vmconvoy-quota/${config.aws.ec2Endpoint ? 'local' : 'aws'}/${config.aws.region}`,
    };
    const running = await client.workflow
      .getHandle(opts.batch)
      .describe()
      .then((d) => d.status.name === 'RUNNING')
      .catch(() => false);
    await client.workflow.start('migrateFleetWorkflow', {
      workflowId: opts.batch,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [{ key: migrationBatchKey, value: opts.batch }],
      memo: { total: input.total, fleetInput: input },
      staticSummary: `batch ${opts.batch}: ${input.total} VMs`,
    });
    return {
      batch: opts.batch,
      vms: input.total,
      attached: running,
      uiLink: `${uiUrl(env)}/namespaces/${namespace}/workflows/${encodeURIComponent(opts.batch)}`,
    };
  } finally {
    await close();
  }
}
