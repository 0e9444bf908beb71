import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  activityWindowSeconds,
  DEFAULT_ACTIVITY_WINDOW_SECONDS,
  fastCallOptions,
  MIN_ACTIVITY_WINDOW_SECONDS,
  uploadOptions,
  validationOptions,
} from '../../workflows/activity-profiles';
import { attemptsExhausted, FailureType, UNEXPECTED_MAX_ATTEMPTS } from '../../common/failures';
import { attemptCapInterceptor, capUnexpectedAttempts } from '../../worker/attempt-cap';

const HOUR = 3600_000;

test('a VM activity may run, all attempts included, until the VM deadline (at least the minimum window)', () => {
  const start = Date.UTC(2026, 0, 1);
  assert.equal(activityWindowSeconds({ deadlineSeconds: 24 * 3600 }, start, start + 2 * HOUR), 22 * 3600);
  assert.equal(
    activityWindowSeconds({ deadlineSeconds: 24 * 3600 }, start, start + 30 * HOUR),
    MIN_ACTIVITY_WINDOW_SECONDS
  );
  assert.equal(activityWindowSeconds(undefined, start, start), DEFAULT_ACTIVITY_WINDOW_SECONDS);
});

test('every profile carries a schedule-to-close window: no retry policy retries for ever', () => {
  const seen: unknown[] = [];
  const window = (settings: unknown): number => {
    seen.push(settings);
    return 42_000_000;
  };
  const profiles = [
    fastCallOptions('write the manifest', { deadlineSeconds: 7200 }, window),
    fastCallOptions('cleanup', undefined, window),
    validationOptions(600, 'q', { deadlineSeconds: 7200 }, window),
    uploadOptions(undefined, 7200, 20, window),
  ];
  for (const options of profiles) {
    assert.equal(options.scheduleToCloseTimeout, 42_000_000, options.summary);
    assert.ok(options.retry?.nonRetryableErrorTypes?.includes(FailureType.ConversionFailed));
  }
  const short = validationOptions(7200, 'q', undefined, () => 60_000);
  assert.equal(short.scheduleToCloseTimeout, 7500_000, 'at least one whole boot check');
  assert.deepEqual(seen, [{ deadlineSeconds: 7200 }, undefined, { deadlineSeconds: 7200 }, { deadlineSeconds: 7200 }]);
});

test('unexpected failures stop after a bounded number of attempts; AWS throttling and outages do not', () => {
  for (const type of [FailureType.Unexpected, 'TypeError', 'Error']) {
    assert.equal(attemptsExhausted(type, UNEXPECTED_MAX_ATTEMPTS - 1), false, type);
    assert.equal(attemptsExhausted(type, UNEXPECTED_MAX_ATTEMPTS), true, type);
  }
  for (const type of [FailureType.AwsThrottled, FailureType.AwsUnavailable, FailureType.AwsCredentialsExpired])
    assert.equal(attemptsExhausted(type, 1000), false, type);
  assert.equal(attemptsExhausted(FailureType.ImageNotFound, 1000), false, 'never retried anyway');
});

test('the worker turns the last unexpected attempt into a non-retryable failure of the same type', async () => {
  const unexpected = ApplicationFailure.retryable('socket hang up', FailureType.Unexpected, { op: 'x' });
  const early = capUnexpectedAttempts(unexpected, 1);
  assert.equal(early, unexpected, 'earlier attempts are retried as before');
  const last = capUnexpectedAttempts(unexpected, UNEXPECTED_MAX_ATTEMPTS) as ApplicationFailure;
  assert.equal(last.nonRetryable, true);
  assert.equal(last.type, FailureType.Unexpected);
  assert.deepEqual(last.details, [{ op: 'x' }]);
  assert.match(last.message, /^socket hang up \(not retried after 5 attempts/);
  const bug = capUnexpectedAttempts(new TypeError('x is undefined'), 9) as ApplicationFailure;
  assert.deepEqual([bug.type, bug.nonRetryable], ['TypeError', true]);
  const throttled = ApplicationFailure.retryable('slow down', FailureType.AwsThrottled);
  assert.equal(capUnexpectedAttempts(throttled, 500), throttled);
  const cancelled = new CancelledFailure('cancelled');
  assert.equal(capUnexpectedAttempts(cancelled, 99), cancelled);

  // Through the interceptor as the worker runs it (the context carries the attempt).
  const interceptor = attemptCapInterceptor({ info: { attempt: UNEXPECTED_MAX_ATTEMPTS } } as unknown as Context);
  const execute = interceptor.inbound!.execute!;
  await assert.rejects(
    execute({ args: [], headers: {} }, () => Promise.reject(new Error('boom'))),
    (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && err.type === 'Error'
  );
  assert.equal(await execute({ args: [], headers: {} }, () => Promise.resolve('ok')), 'ok');
});
