/**
 * The activity context, tolerant of being called outside an activity (unit tests and scripts call the same
 * functions directly): logging, heartbeats, cancellation and retry information become no-ops there.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';

export function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

type Meta = Record<string, unknown>;

/** `log` of @temporalio/activity (keys and IDs only in `meta`), silent outside an activity. */
export const activityLog = {
  debug(message: string, meta?: Meta): void {
    currentContext()?.log.debug(message, meta);
  },
  info(message: string, meta?: Meta): void {
    currentContext()?.log.info(message, meta);
  },
  warn(message: string, meta?: Meta): void {
    currentContext()?.log.warn(message, meta);
  },
  error(message: string, meta?: Meta): void {
    currentContext()?.log.error(message, meta);
  },
};

export function heartbeat(details?: unknown): void {
  currentContext()?.heartbeat(details);
}

/** The abort signal to hand to SDK calls: fires when the activity is cancelled. */
export function cancellationSignal(): AbortSignal | undefined {
  return currentContext()?.cancellationSignal;
}

export function attempt(): number {
  return currentContext()?.info.attempt ?? 1;
}

/**
 * This activity execution, the same across its retried attempts and different for every other scheduling
 * of the activity (another workflow run, or the same run asking again); undefined outside an activity.
 */
export function activityExecution(): string | undefined {
  const info = currentContext()?.info;
  return info?.workflowExecution ? `${info.workflowExecution.runId}/${info.activityId}` : undefined;
}

export function previousHeartbeatDetails(): unknown {
  return currentContext()?.info.heartbeatDetails;
}

/** Throws the activity's CancelledFailure when it has been cancelled (lets the worker report cancellation). */
export function throwIfCancelled(): void {
  const signal = cancellationSignal();
  if (!signal?.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : new CancelledFailure('activity cancelled');
}

/** A cancellable sleep: Context.sleep inside an activity, a timer outside. */
export async function sleepMs(ms: number): Promise<void> {
  const ctx = currentContext();
  if (ctx) return ctx.sleep(ms);
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How often `keepAlive` heartbeats. The SDK sends at most one heartbeat per 0.8 × heartbeatTimeout, so a
 * short interval costs nothing and keeps the server's view fresh.
 */
const KEEPALIVE_INTERVAL_MS = 5_000;

/**
 * Wraps a short activity so it heartbeats while it runs. The workflow gives these activities a heartbeat
 * timeout of seconds: when the worker running one dies, the server retries it elsewhere after that timeout
 * instead of after the whole start-to-close timeout (minutes). Only for activities that never read their
 * own heartbeat details on retry (the upload does, and heartbeats its progress itself).
 */
export function keepAlive<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    const ctx = currentContext();
    if (!ctx?.info.heartbeatTimeoutMs) return fn(...args);
    // No heartbeat at the start: the timeout already counts from it, and most calls end well before the
    // first tick (a heartbeat is a request to the server; sub-second activities should not pay for one).
    const ticker = setInterval(() => ctx.heartbeat(), KEEPALIVE_INTERVAL_MS);
    try {
      return await fn(...args);
    } finally {
      clearInterval(ticker);
    }
  };
}
