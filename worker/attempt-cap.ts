/**
 * Caps the attempts of failures retried only because nothing says they are permanent (common/failures.ts
 * `attemptsExhausted`): a retry policy limits attempts for every failure type alike, and AWS throttling
 * must keep being retried within the VM's deadline while a bug must not be retried for a day. On the last
 * attempt the failure is rethrown as non-retryable, with its type, message and details kept, so the VM fails
 * with what went wrong instead of retrying for the rest of its schedule-to-close window.
 *
 * Registered on every worker: `interceptors: { activity: [attemptCapInterceptor] }`.
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import { attemptsExhausted, UNEXPECTED_MAX_ATTEMPTS } from '../common/failures';

/** The failure to report for `err` thrown by attempt `attempt` (1-based): `err` itself unless exhausted. */
export function capUnexpectedAttempts(err: unknown, attempt: number): unknown {
  if (err instanceof CancelledFailure || !(err instanceof Error)) return err;
  if (err instanceof ApplicationFailure && err.nonRetryable) return err;
  // What the workflow will see as the failure's type: Temporal reports a plain Error by its name.
  const type = err instanceof ApplicationFailure ? (err.type ?? 'Error') : err.name;
  if (!attemptsExhausted(type, attempt)) return err;
  return ApplicationFailure.create({
    type,
    message: `${err.message} (not retried after ${attempt} attempts: failures of type ${type} stop after ${UNEXPECTED_MAX_ATTEMPTS})`,
    details: err instanceof ApplicationFailure ? (err.details ?? undefined) : undefined,
    nonRetryable: true,
    cause: err,
  });
}

/** The activity interceptor factory for Worker.create's `interceptors.activity`. */
export function attemptCapInterceptor(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          throw capUnexpectedAttempts(err, ctx.info.attempt);
        }
      },
    },
  };
}
