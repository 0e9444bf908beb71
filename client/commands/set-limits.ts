/** `vmconvoy set-limits <batch>`: change upload and conversion limits while the batch runs. */
import type { Client } from '@temporalio/client';
import type { FleetLimits, SetLimitsRequest } from '../../workflows/fleet-types';
import { setLimitsUpdate } from '../../workflows/messages';
import { ExitError } from '../errors';
import { rootMessage, runningFleet } from './fleet-handle';

export interface SetLimitsResult {
  batch: string;
  limits: FleetLimits;
}

export async function setLimitsCommand(client: Client, batch: string, request: SetLimitsRequest): Promise<SetLimitsResult> {
  if (Object.values(request).every((v) => v === undefined)) throw new ExitError(1, 'give --max-uploads and/or --max-conversions');
  const { handle } = await runningFleet(client, batch);
  try {
    return { batch, limits: await handle.executeUpdate(setLimitsUpdate, { args: [request] }) };
  } catch (err) {
    throw new ExitError(1, `batch "${batch}" refused the limits: ${rootMessage(err)}`);
  }
}
