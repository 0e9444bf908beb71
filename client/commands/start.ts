/**
 * `vmconvoy start <csv> --batch NAME`: validate (nothing is stored or started when anything is wrong),
 * store the normalised inventory in the staging bucket, then start the batch's fleet workflow — or attach
 * to it when it is already running. A batch that ended, started again, resumes: the fleet skips VMs that
 * already completed and never starts a VM twice.
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { InvalidArgumentError } from 'commander';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import type { VmconvoyConfig } from '../../common/config';
import { awsApiTaskQueueOf, controlTaskQueueOf } from '../../common/task-queues';
import { inventoryKeyFor, storeInventory } from '../../common/inventory-store';
import type { FleetInput } from '../../common/contracts/fleet';
import { DEFAULT_NOTIFY_RECEIVER, NOTIFY_RECEIVER_PATTERN } from '../../common/contracts/notify';
import { migrationBatchKey } from '../../workflows/search-attributes';
import type { MigrationSettings, OnFail, UploadFormat } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, ON_FAIL_CHOICES, UPLOAD_FORMATS, VM_NAME_PATTERN } from '../../common/contracts/migration';
import { ExitError } from '../errors';
import type { InventoryProblem } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';
import { awsTargetProblems } from '../inventory/aws-targets';
import { onlineInventoryProblems } from '../online/online-checks';
import { getAwsApiBudget, setAwsApiBudget } from '../aws-api-budget';
import { sitesOf, unservedQueueWarnings, unservedSiteWarnings } from '../queue-pollers';
import { conversionLimitOf } from '../output/watch-source';
import { fleetStatusQuery, setLimitsUpdate } from '../../workflows/messages';
import { CSV_ARGUMENT, jsonOption, parseApiRate, percentage, positiveInt } from '../options';
import { START_VIEW } from '../output/messages';
import { batchUiLink, cliConfig, quotaWorkflowIdFor } from '../settings';
import type { CommandSpec } from './command';
import { exitCodeFor } from './status';

export interface StartOptions {
  batch: string;
  maxUploads?: number;
  maxConversions?: number;
  canary?: number;
  failureBudget?: number;
  dryRun?: boolean;
  /** `--offline`: skip the online checks (client/online/online-checks.ts) that ask AWS before anything starts. */
  offline?: boolean;
  /** AWS API budget (requests/s) of each account+Region on the AWS API task queue; `default` removes it. */
  maxApiRate?: number | 'default';
  /** A failed VM's converted instance: kept stopped, or terminated with its volume. @default keep */
  onFail?: OnFail;
  /** How RAW and fixed VHD images are sent when their row says nothing. @default stream-optimized */
  uploadFormat?: UploadFormat;
  /** In-flight cap (VMs started and not finished). @default maxUploads + 2 × maxConversions */
  maxInFlight?: number;
  /** The receiver (configured on the workers) of signed events on each VM failure, wave end and batch end. */
  notify?: string;
  /**
   * Per-VM settings over the defaults, for programs that call startCommand (benchmarks, tests); the CLI
   * has no flag for these.
   */
  settings?: Partial<MigrationSettings>;
}

export type StartResult =
  | {
      ok: true;
      batch: string;
      vms: number;
      waves: number;
      /** True when the batch was already running and this attached to it. */
      attached: boolean;
      runId: string;
      inventoryKey: string;
      dryRun: boolean;
      /** The AWS API budget in force on the batch's queue after start (requests/s); null = none. */
      awsApiBudget: number | null;
      /** Conversions at once in the batch's account+region (shared by every batch there); null = its quota workflow did not answer. */
      conversionLimit: number | null;
      /** Queues of this batch that no worker polls (VMs would wait there silently). */
      warnings: string[];
    }
  | { ok: false; batch: string; errors: InventoryProblem[] };

/**
 * A receiver's name, as `--notify` takes it. Not a URL: the batch's input is kept in its workflow history,
 * and a webhook URL's path or query is its token, so the URL is the workers' setting.
 */
export function notifyReceiver(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new InvalidArgumentError(
      "give the name of a receiver, not a URL: set the URL on the workers as VMCONVOY_NOTIFY_URL (then use --notify alone) or VMCONVOY_NOTIFY_URL_<NAME> (then --notify <name>). A batch's options are kept in its workflow history, and a webhook URL carries its token"
    );
  }
  const name = value.toLowerCase();
  if (!NOTIFY_RECEIVER_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `"${value}" is not a receiver name: letters, digits and _ (the tail of VMCONVOY_NOTIFY_URL_<NAME>)`
    );
  }
  return name;
}

export const DEFAULT_LIMITS = { maxUploads: 4, maxConversions: 5 } as const;

export function fleetInputFor(
  batch: string,
  total: number,
  inventoryKey: string,
  opts: StartOptions,
  config: VmconvoyConfig
): FleetInput {
  const settings: MigrationSettings = { ...DEFAULT_SETTINGS, ...opts.settings, dryRun: opts.dryRun ?? false };
  if (opts.onFail) settings.onFail = opts.onFail;
  if (opts.uploadFormat) settings.uploadFormat = opts.uploadFormat;
  if (config.temporal.uploadTaskQueue) settings.uploadTaskQueue = config.temporal.uploadTaskQueue;
  settings.awsApiTaskQueue = awsApiTaskQueueOf(config.temporal);
  return {
    batch,
    inventoryKey,
    total,
    limits: {
      maxUploads: opts.maxUploads ?? DEFAULT_LIMITS.maxUploads,
      maxConversions: opts.maxConversions ?? DEFAULT_LIMITS.maxConversions,
      ...(opts.maxInFlight === undefined ? {} : { maxInFlight: opts.maxInFlight }),
    },
    settings,
    canary: opts.canary ?? 0,
    failureBudgetPercent: opts.failureBudget,
    quotaWorkflowId: quotaWorkflowIdFor(config.aws),
    // --- accounts (issue 20): the fleet gives each account's quota this limit when it resolves the account.
    ...(opts.maxConversions !== undefined && !settings.dryRun ? { conversionLimitSet: true } : {}),
    vmTaskQueue: config.temporal.taskQueue,
    ...(opts.notify === undefined ? {} : { notifyReceiver: opts.notify }),
  };
}

/** Validation problems come back as data (`ok: false`); the connection to S3 or Temporal may throw. */
export async function startCommand(
  csv: string,
  opts: StartOptions,
  config: VmconvoyConfig,
  /** Connects only once the inventory is valid, so a bad CSV is reported even with Temporal down. */
  getClient: () => Promise<Client>
): Promise<StartResult> {
  if (!VM_NAME_PATTERN.test(opts.batch))
    throw new ExitError(1, `--batch "${opts.batch}": use 1-64 characters of A-Z a-z 0-9 . _ -`);
  const inventory = await readInventory(csv, { imageRoots: config.imageRoots });
  if (!inventory.ok) return { ok: false, batch: opts.batch, errors: inventory.errors };
  const targetErrors = await awsTargetProblems(inventory.rows, config.aws);
  if (targetErrors.length > 0) return { ok: false, batch: opts.batch, errors: targetErrors };
  if (!opts.offline) {
    const skipHint = 'start with --offline';
    const errors = await onlineInventoryProblems(inventory.rows, config, { batch: opts.batch, skipHint });
    if (errors.length > 0) return { ok: false, batch: opts.batch, errors };
  }

  const inventoryKey = inventoryKeyFor(config.aws.keyPrefix, opts.batch);
  const input = fleetInputFor(opts.batch, inventory.rows.length, inventoryKey, opts, config);
  const client = await getClient();
  const apiQueue = awsApiTaskQueueOf(config.temporal);
  // Set before the batch starts so its first ImportInstance calls are already budgeted.
  const awsApiBudget =
    opts.maxApiRate === undefined
      ? await getAwsApiBudget(client, apiQueue)
      : await setAwsApiBudget(client, apiQueue, opts.maxApiRate, `vmconvoy start --batch ${opts.batch}`);
  const handle = client.workflow.getHandle(opts.batch);
  const wasRunning = await handle
    .describe()
    .then((d) => d.status.name === 'RUNNING')
    .catch(() => false);
  // A running batch keeps the inventory it loads pages from: attaching must not change it under its feet.
  if (!wasRunning) {
    const aws = createAwsClients(config.aws);
    try {
      await storeInventory(aws.s3, config.aws.bucket, inventoryKey, inventory.rows);
    } catch (err) {
      throw new ExitError(
        1,
        `cannot store the inventory in s3://${config.aws.bucket}/${inventoryKey}: ${(err as Error).message}. Check VMCONVOY_BUCKET, AWS_REGION and the credentials.`
      );
    } finally {
      destroyAwsClients(aws);
    }
  }
  // The conversion limit belongs to each account+Region (issue 20): which accounts a batch uses is known
  // once the fleet has asked STS, so the fleet sets the limit (conversionLimitSet), and a running batch
  // is asked to change it on every account it uses so far. Reported either way.
  let conversionLimit: number | null;
  if (opts.maxConversions !== undefined && !opts.dryRun) {
    if (wasRunning) await handle.executeUpdate(setLimitsUpdate, { args: [{ maxConversions: opts.maxConversions }] });
    conversionLimit = opts.maxConversions;
  } else if (wasRunning) {
    const fleet = await handle.query(fleetStatusQuery).catch(() => undefined);
    conversionLimit = await conversionLimitOf(client, opts.batch, input.limits.maxConversions, fleet?.accounts);
  } else {
    conversionLimit = input.limits.maxConversions;
  }
  const started = await client.workflow.start('migrateFleetWorkflow', {
    workflowId: opts.batch,
    taskQueue: controlTaskQueueOf(config.temporal),
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [{ key: migrationBatchKey, value: opts.batch }],
    memo: { total: input.total, fleetInput: input },
    staticSummary: `batch ${opts.batch}: ${input.total} VMs`,
  });
  return {
    ok: true,
    batch: opts.batch,
    vms: input.total,
    waves: new Set(inventory.rows.map((r) => r.spec.wave)).size,
    attached: wasRunning,
    runId: started.firstExecutionRunId,
    inventoryKey,
    dryRun: input.settings.dryRun,
    awsApiBudget: awsApiBudget ?? null,
    conversionLimit,
    warnings: [
      ...(await unservedQueueWarnings(client, config)),
      ...(await unservedSiteWarnings(client, config, sitesOf(inventory.rows))),
    ],
  };
}

/** What `start` prints: the result, with the Web UI's link to the batch when it started. */
export type StartOutput =
  (Extract<StartResult, { ok: true }> & { uiLink: string }) | Extract<StartResult, { ok: false }>;

type StartFlags = Omit<StartOptions, 'maxInFlight' | 'settings'> & { wait?: boolean; json?: boolean };

export const startSpec: CommandSpec<StartFlags, StartOutput> = {
  name: 'start',
  summary:
    'validate, store the inventory, then start the batch (or attach to it when it is running; a batch that ended resumes, skipping completed VMs)',
  arguments: [CSV_ARGUMENT],
  options: [
    {
      flags: '--batch <name>',
      description: 'batch name: the fleet workflow ID and the prefix of every VM workflow ID',
      required: true,
    },
    {
      flags: '--max-uploads <n>',
      description: `VMs in pre-flight/upload at once (default: ${DEFAULT_LIMITS.maxUploads})`,
      parse: positiveInt('--max-uploads'),
    },
    {
      flags: '--max-conversions <n>',
      description: `conversions at once in this account and region; EC2 allows about 5 (default: ${DEFAULT_LIMITS.maxConversions})`,
      parse: positiveInt('--max-conversions'),
    },
    {
      flags: '--max-api-rate <rps>',
      description:
        'AWS API budget per AWS account and Region: EC2 calls per second each account+Region gets, for all its batches together; a poll is one request, an import or a validation a few ("default" removes it)',
      parse: parseApiRate,
    },
    {
      flags: '--canary <k>',
      description: 'the first K VMs must complete before any other starts',
      parse: positiveInt('--canary'),
    },
    {
      flags: '--failure-budget <pct>',
      description: 'pause once more than this % of finished VMs failed',
      parse: percentage,
    },
    {
      flags: '--dry-run',
      description:
        'pre-flight, online checks and ImportInstance with DryRun for every VM, then stop (nothing is uploaded or imported)',
    },
    {
      flags: '--offline',
      description:
        'skip the online checks (zone, subnet, security groups, private IP and ImportInstance DryRun, asked of AWS)',
    },
    {
      flags: '--notify [receiver]',
      description:
        'POST a JSON event on each VM failure, wave end and the batch end to this receiver, whose URL the workers have (VMCONVOY_NOTIFY_URL for the default, VMCONVOY_NOTIFY_URL_<NAME> for <name>), signed with VMCONVOY_NOTIFY_SECRET (also on the workers)',
      parse: notifyReceiver,
      preset: DEFAULT_NOTIFY_RECEIVER,
    },
    {
      flags: '--on-fail <what>',
      description:
        "a failed VM's converted instance: keep (stopped, for inspection; retry adopts or replaces it) or terminate (with its volume)",
      choices: ON_FAIL_CHOICES,
    },
    {
      flags: '--upload-format <how>',
      description:
        'how RAW and fixed VHD images are sent when their row has no upload_format: stream-optimized (zero grains skipped, the rest compressed; the default) or as-is (byte for byte)',
      choices: UPLOAD_FORMATS,
    },
    { flags: '--wait', description: 'show live progress until the batch ends (exit 2 when VMs failed)' },
    jsonOption('machine-readable output (with --wait: one JSON object per line)'),
  ],
  examples: [
    'vmconvoy start examples/inventory.csv --batch wave-a --max-uploads 4 --max-conversions 5 --wait',
    'vmconvoy start big.csv --batch prod-1 --canary 3 --failure-budget 10',
  ],
  async run({ args: [csv], opts }, ctx) {
    const result = await startCommand(csv!, opts, cliConfig(ctx.env), ctx.client);
    if (!result.ok) return result;
    return { ...result, uiLink: batchUiLink(ctx.env, (await ctx.connection()).namespace, result.batch) };
  },
  view: START_VIEW,
  follow: (result, { opts }) => (result.ok && opts.wait ? { batch: result.batch, intervalMs: 1000 } : undefined),
  exit(result, _call, followed) {
    if (!result.ok) return new ExitError(1, '');
    if (followed && exitCodeFor(followed) === 2) {
      return new ExitError(
        2,
        `batch ${result.batch} ended with failed VMs: \`vmconvoy report ${result.batch} --format md\` lists the errors; fix them and run \`vmconvoy retry ${result.batch}\``
      );
    }
    return undefined;
  },
};
