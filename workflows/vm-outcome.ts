/** How a VM workflow's end is told: a stable type and message out of whatever ended it, and the outcome metric. */
import { ActivityFailure, ApplicationFailure, metricMeter } from '@temporalio/workflow';
import type { VmError } from '../common/contracts/migration';

/** VM outcomes by status (and failure type), for dashboards and alerts. */
export function recordOutcome(status: 'Completed' | 'Failed' | 'Cancelled', errorType?: string): void {
  metricMeter
    .createCounter('vmconvoy_vm_outcomes', '1', 'VMs finished, by status')
    .add(1, errorType ? { status, error_type: errorType } : { status });
}

/** Pulls a stable type and message out of whatever ended the VM. */
export function toVmError(err: unknown): VmError {
  let cause: unknown = err;
  if (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
}

export function errorType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}
