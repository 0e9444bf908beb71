/**
 * The events `start --notify URL` sends (activities/notify.ts POSTs them; workflows/notify.ts retries).
 * Sandbox-safe: the fleet workflow builds them. Names, numbers and AWS IDs only: no secret is ever in one.
 */

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
      state: 'completed' | 'failed';
      counts: NotifyCounts & { total: number };
      /** Where the batch's report was stored (absent if it could not be). */
      report?: { bucketKeyJson: string; bucketKeyHtml: string };
    });

export interface NotifyCounts {
  completed: number;
  failed: number;
  cancelled: number;
}
