/** `vmconvoy set-limits <batch>`: change upload, conversion and AWS API limits while the batch runs. */
import type { Client } from '@temporalio/client';
import type { FleetInput, FleetLimits, SetLimitsRequest } from '../../common/contracts/fleet';
import { fleetStatusQuery, setLimitsUpdate } from '../../workflows/messages';
import { setAwsApiBudget } from '../aws-api-budget';
import { ExitError } from '../errors';
import type { FleetHandle } from './fleet-handle';
import { rootMessage, runningFleet } from './fleet-handle';

export interface SetLimitsOptions extends SetLimitsRequest {
  /** Requests per second on the batch's AWS API task queue, or `default` to remove the budget. */
  maxApiRate?: number | 'default';
}

export interface SetLimitsResult {
  batch: string;
  limits: FleetLimits;
  /** The AWS API budget now in force (requests/s) when --max-api-rate was given; null = none. */
  awsApiBudget?: { taskQueue: string; requestsPerSecond: number | null };
}

/** The AWS API task queue the batch's VMs use, from the input the batch was started with. */
export function awsApiQueueOfBatch(fleet: FleetHandle): string | undefined {
  const input = fleet.description.memo?.fleetInput as FleetInput | undefined;
  return input?.settings.awsApiTaskQueue;
}

export async function setLimitsCommand(client: Client, batch: string, opts: SetLimitsOptions): Promise<SetLimitsResult> {
  const { maxApiRate, ...request } = opts;
  if (maxApiRate === undefined && Object.values(request).every((v) => v === undefined)) {
    throw new ExitError(1, 'give --max-uploads, --max-conversions and/or --max-api-rate');
  }
  const fleet = await runningFleet(client, batch);
  let awsApiBudget: SetLimitsResult['awsApiBudget'];
  if (maxApiRate !== undefined) {
    const taskQueue = awsApiQueueOfBatch(fleet);
    if (!taskQueue) throw new ExitError(1, `batch "${batch}" was started by a vmconvoy without an AWS API task queue; its EC2 calls cannot be budgeted`);
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
