/**
 * One AWS request made by an activity: sent with the activity's cancellation signal, and any error turned
 * into the classified failure (aws-errors.ts) that names the operation. A cancelled activity reports its
 * cancellation, not the aborted request.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { attempt, cancellationSignal, throwIfCancelled } from './activity-context';
import type { ErrorContext } from './aws-errors';
import { classifyAwsError } from './aws-errors';

export type AwsCallContext = Omit<ErrorContext, 'attempt'>;

/** The failure for `err`, classified with this call's context and the activity's attempt. */
export function awsFailure(err: unknown, ctx: AwsCallContext): ApplicationFailure {
  throwIfCancelled();
  return classifyAwsError(err, { ...ctx, attempt: attempt() });
}

/**
 * Runs `send` and returns its result. `recover` may turn an expected error into a value (`{ value }`, e.g.
 * NotFound → undefined); any other error is thrown classified.
 */
export async function awsCall<T>(
  ctx: AwsCallContext,
  send: (abortSignal: AbortSignal | undefined) => Promise<T>,
  recover?: (err: unknown) => { value: T } | undefined
): Promise<T> {
  try {
    return await send(cancellationSignal());
  } catch (err) {
    const recovered = recover?.(err);
    if (recovered) return recovered.value;
    throw awsFailure(err, ctx);
  }
}
