/**
 * sendNotification: one HTTP POST of a batch event (common/contracts/notify.ts) to the receiver the batch
 * names (`start --notify [receiver]`), whose URL the worker reads from VMCONVOY_NOTIFY_URL[_<NAME>]: webhook
 * URLs carry their token in the path or query, so the URL never enters a workflow's input, history or
 * failure message (errors name the receiver and the URL's origin only). The body is signed with HMAC-SHA256 under the shared secret the worker reads from
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
import {
  DEFAULT_NOTIFY_RECEIVER,
  NOTIFY_EVENT_HEADER,
  NOTIFY_ID_HEADER,
  NOTIFY_SIGNATURE_HEADER,
} from '../common/contracts/notify';
import { cancellationSignal } from './activity-context';

/** The receiver's name; `url` only from a batch started before receivers were named. */
export type NotifyInput = ({ receiver: string } | { url: string }) & { event: NotifyEvent };

export interface NotifyDeps {
  secret: string | undefined;
  /** Receiver name → URL (common/config.ts notifyReceivers). */
  receivers: Record<string, string>;
}

/** The URL to POST to, and how errors name it: the receiver and the URL's origin, never its path or query. */
function destination(receivers: Record<string, string>, input: NotifyInput): { url: string; label: string } {
  const url = 'receiver' in input ? receivers[input.receiver] : input.url;
  if (url === undefined) {
    const name = (input as { receiver: string }).receiver;
    const variable =
      name === DEFAULT_NOTIFY_RECEIVER ? 'VMCONVOY_NOTIFY_URL' : `VMCONVOY_NOTIFY_URL_${name.toUpperCase()}`;
    throw ApplicationFailure.nonRetryable(
      `the worker has no notification receiver "${name}": set ${variable} to its URL on the workers and restart them (the batch's events for it are dropped until then)`,
      'NotifyReceiverUnknown'
    );
  }
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    origin = 'an invalid URL';
  }
  return { url, label: 'receiver' in input ? `receiver "${input.receiver}" (${origin})` : origin };
}

/** `sha256=<hex>`: the signature header's value for this body. */
export function notifySignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

const TIMEOUT_MS = 10_000;

export async function sendNotification(deps: NotifyDeps, input: NotifyInput): Promise<{ status: number }> {
  const { secret } = deps;
  if (!secret) {
    throw ApplicationFailure.nonRetryable(
      'VMCONVOY_NOTIFY_SECRET is not set on the worker: set it (the receiver checks the signature with the same secret) and restart the worker',
      'NotifySecretMissing'
    );
  }
  const { url, label } = destination(deps.receivers, input);
  const body = JSON.stringify(input.event);
  const signals = [AbortSignal.timeout(TIMEOUT_MS), cancellationSignal()].filter((s): s is AbortSignal => !!s);
  let res: Response;
  try {
    res = await fetch(url, {
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
    // The message goes into history: the receiver and origin are named; the URL's path, body and secret are not.
    throw ApplicationFailure.retryable(`POST to ${label} failed: ${(err as Error).message}`, 'NotifyUnreachable');
  }
  await res.body?.cancel();
  if (res.ok) return { status: res.status };
  const message = `POST to ${label} answered ${res.status}`;
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw ApplicationFailure.nonRetryable(
      `${message}: the receiver refuses the event (check its URL and secret)`,
      'NotifyRefused'
    );
  }
  throw ApplicationFailure.retryable(message, 'NotifyFailed');
}
