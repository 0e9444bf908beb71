/**
 * The events `start --notify [receiver]` sends (activities/notify.ts POSTs them; workflows/notify.ts retries).
 * Sandbox-safe: the fleet workflow builds them. Names, numbers and AWS IDs only: no secret is ever in one.
 */

/**
 * A batch names its receiver; the URL is configured on the workers (common/config.ts notifyReceiversOf).
 * `start --notify` without a name means this one (VMCONVOY_NOTIFY_URL).
 */
export const DEFAULT_NOTIFY_RECEIVER = 'default';
/** Receiver names are the tail of an environment variable's name, lower-cased. */
export const NOTIFY_RECEIVER_PATTERN = /^[a-z0-9_]{1,64}$/;

export const NOTIFY_SIGNATURE_HEADER = 'x-vmconvoy-signature';
export const NOTIFY_EVENT_HEADER = 'x-vmconvoy-event';
export const NOTIFY_ID_HEADER = 'x-vmconvoy-delivery';

interface EventBase {
  /** Unique per event, the same on every delivery attempt. */
  id: string;
  batch: string;
  /** When the fleet saw it (ISO 8601). */
  time: string;
}

export type NotifyEvent =
  | (EventBase & {
      type: 'vm.failed';
      vm: { name: string; errorType: string; message: string; instanceId?: string };
    })
  | (EventBase & {
      type: 'wave.ended';
      wave: number;
      /** The batch's counts when the wave ended. */
      counts: NotifyCounts;
    })
  | (EventBase & {
      type: 'batch.ended';
      /** `cancelled`: the operator cancelled the batch; its VMs were cancelled and cleaned up. */
      state: 'completed' | 'failed' | 'cancelled';
      counts: NotifyCounts & { total: number };
      /** Where the batch's report was stored (absent if it could not be). */
      report?: { bucketKeyJson: string; bucketKeyHtml: string };
    });

export interface NotifyCounts {
  completed: number;
  failed: number;
  cancelled: number;
}
