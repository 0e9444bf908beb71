/**
 * sendNotification: one HTTP POST of a batch event (common/contracts/notify.ts) to the operator's URL
 * (`start --notify`). The body is signed with HMAC-SHA256 under the shared secret the worker reads from
 * VMCONVOY_NOTIFY_SECRET, so the receiver can tell a vmconvoy event from anyone's POST; the secret lives
 * in the worker's configuration only, never in a workflow's input or history.
 *
 *   X-Vmconvoy-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>
 *   X-Vmconvoy-Event:     vm.failed | wave.ended | batch.ended
 *   X-Vmconvoy-Delivery:  the event's id (the same on every retry: receivers drop duplicates by it)
 *
 * A refusal the receiver will repeat (4xx other than 408 and 429) is not retried; anything else (network,
 * 5xx, 408, 429, timeout) is, with backoff, by the notification workflow's retry policy.
 */
import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { NotifyEvent } from '../common/contracts/notify';
import { NOTIFY_EVENT_HEADER, NOTIFY_ID_HEADER, NOTIFY_SIGNATURE_HEADER } from '../common/contracts/notify';
import { cancellationSignal } from './activity-context';

export interface NotifyInput {
  url: string;
  event: NotifyEvent;
}

/** `sha256=<hex>`: the signature header's value for this body. */
export function notifySignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

const TIMEOUT_MS = 10_000;

export async function sendNotification(secret: string | undefined, input: NotifyInput): Promise<{ status: number }> {
  if (!secret) {
    throw ApplicationFailure.nonRetryable(
      'VMCONVOY_NOTIFY_SECRET is not set on the worker: set it (the receiver checks the signature with the same secret) and restart the worker',
      'NotifySecretMissing'
    );
  }
  const body = JSON.stringify(input.event);
  const signals = [AbortSignal.timeout(TIMEOUT_MS), cancellationSignal()].filter((s): s is AbortSignal => !!s);
  let res: Response;
  try {
    res = await fetch(input.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'vmconvoy-notify',
        [NOTIFY_SIGNATURE_HEADER]: notifySignature(secret, body),
        [NOTIFY_EVENT_HEADER]: input.event.type,
        [NOTIFY_ID_HEADER]: input.event.id,
      },
      body,
      signal: AbortSignal.any(signals),
      redirect: 'error',
    });
  } catch (err) {
    // The URL is the operator's: it is named; the body and secret are not.
    throw ApplicationFailure.retryable(`POST ${input.url} failed: ${(err as Error).message}`, 'NotifyUnreachable');
  }
  await res.body?.cancel();
  if (res.ok) return { status: res.status };
  const message = `POST ${input.url} answered ${res.status}`;
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw ApplicationFailure.nonRetryable(
      `${message}: the receiver refuses the event (check its URL and secret)`,
      'NotifyRefused'
    );
  }
  throw ApplicationFailure.retryable(message, 'NotifyFailed');
}
