/** `vmconvoy set-limits <batch>`: change upload, conversion and AWS API limits while the batch runs. */
import type { Client } from '@temporalio/client';
import type { FleetInput, FleetLimits, SetLimitsRequest } from '../../common/contracts/fleet';
import { fleetStatusQuery, setLimitsUpdate } from '../../workflows/messages';
import { setAwsApiBudget } from '../aws-api-budget';
import { ExitError } from '../errors';
import { BATCH_ARGUMENT, jsonOption, parseApiRate, positiveInt } from '../options';
import { SET_LIMITS_VIEW } from '../output/messages';
import type { CommandSpec } from './command';
import type { FleetHandle } from './fleet-handle';
import { rootMessage, runningFleet } from './fleet-handle';

export interface SetLimitsOptions extends SetLimitsRequest {
  /** Requests per second each account+Region gets on the batch's AWS API task queue; `default` removes it. */
  maxApiRate?: number | 'default';
}

export interface SetLimitsResult {
  batch: string;
  limits: FleetLimits;
  /** The AWS API budget per account+Region now in force (requests/s) when --max-api-rate was given; null = none. */
  awsApiBudget?: { taskQueue: string; requestsPerSecond: number | null };
}

/** The AWS API task queue the batch's VMs use, from the input the batch was started with. */
export function awsApiQueueOfBatch(fleet: FleetHandle): string | undefined {
  const input = fleet.description.memo?.fleetInput as FleetInput | undefined;
  return input?.settings.awsApiTaskQueue;
}

export async function setLimitsCommand(
  client: Client,
  batch: string,
  opts: SetLimitsOptions
): Promise<SetLimitsResult> {
  const { maxApiRate, ...request } = opts;
  if (maxApiRate === undefined && Object.values(request).every((v) => v === undefined)) {
    throw new ExitError(1, 'give --max-uploads, --max-conversions and/or --max-api-rate');
  }
  const fleet = await runningFleet(client, batch);
  let awsApiBudget: SetLimitsResult['awsApiBudget'];
  if (maxApiRate !== undefined) {
    const taskQueue = awsApiQueueOfBatch(fleet);
    if (!taskQueue)
      throw new ExitError(
        1,
        `batch "${batch}" was started by a vmconvoy without an AWS API task queue; its EC2 calls cannot be budgeted`
      );
    const now = await setAwsApiBudget(client, taskQueue, maxApiRate, `vmconvoy set-limits ${batch}`);
    awsApiBudget = { taskQueue, requestsPerSecond: now ?? null };
  }
  let limits: FleetLimits;
  if (Object.values(request).some((v) => v !== undefined)) {
    try {
      limits = await fleet.handle.executeUpdate(setLimitsUpdate, { args: [request] });
    } catch (err) {
      throw new ExitError(1, `batch "${batch}" refused the limits: ${rootMessage(err)}`);
    }
  } else {
    limits = (await fleet.handle.query(fleetStatusQuery)).limits;
  }
  return { batch, limits, awsApiBudget };
}

export const setLimitsSpec: CommandSpec<SetLimitsOptions & { json?: boolean }, SetLimitsResult> = {
  name: 'set-limits',
  summary: 'change the batch limits while it runs',
  arguments: [BATCH_ARGUMENT],
  options: [
    {
      flags: '--max-uploads <n>',
      description: 'VMs in pre-flight/upload at once',
      parse: positiveInt('--max-uploads'),
    },
    {
      flags: '--max-conversions <n>',
      description: 'conversions at once in the account and region',
      parse: positiveInt('--max-conversions'),
    },
    {
      flags: '--max-api-rate <rps>',
      description:
        'AWS API budget per AWS account and Region: EC2 requests per second each account+Region gets, for all the batches on the queue together ("default" removes it)',
      parse: parseApiRate,
    },
    jsonOption(),
  ],
  examples: [
    'vmconvoy set-limits wave-a --max-uploads 8 --max-conversions 5',
    'vmconvoy set-limits wave-a --max-api-rate 10',
  ],
  // Only the limits: setLimitsCommand refuses a call that names none.
  run: async ({ args: [batch], opts: { maxUploads, maxConversions, maxApiRate } }, ctx) =>
    setLimitsCommand(await ctx.client(), batch!, { maxUploads, maxConversions, maxApiRate }),
  view: SET_LIMITS_VIEW,
};
