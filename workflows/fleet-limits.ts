/**
 * The fleet's window limits: their defaults, how a change is validated and how it merges with the limits
 * in force. Pure functions (no Temporal), used by FleetScheduler and the setLimits update's validator.
 */
import type { FleetLimits, SetLimitsRequest } from '../common/contracts/fleet';

/** Fills in the in-flight window when it was not given: room for the uploads and two rounds of conversions. */
export function effectiveLimits(limits: FleetLimits): Required<FleetLimits> {
  return { ...limits, maxInFlight: limits.maxInFlight ?? limits.maxUploads + 2 * limits.maxConversions };
}

/** Validates a limits change before it reaches history. */
export function validateLimits(request: SetLimitsRequest): void {
  for (const [name, value] of Object.entries(request)) {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1)) {
      throw new Error(`${name} must be a whole number of at least 1 (got ${String(value)})`);
    }
  }
}

/**
 * The limits after `request`. An explicit maxInFlight (in the request, else in the run's input) stays;
 * otherwise it follows the other two limits.
 */
export function changedLimits(
  current: Required<FleetLimits>,
  configured: FleetLimits,
  request: SetLimitsRequest
): Required<FleetLimits> {
  const explicitInFlight = request.maxInFlight ?? configured.maxInFlight;
  return effectiveLimits({ ...current, ...request, maxInFlight: explicitInFlight });
}
