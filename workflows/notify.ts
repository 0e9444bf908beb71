/**
 * Notifications of a batch (`start --notify URL`): a VM failed, a wave ended, the batch ended.
 *
 * Each event is delivered by a small workflow of its own (notifyWorkflow), which the fleet starts and
 * abandons: the fleet waits only for the child's start (one server round trip), never for the delivery.
 * A receiver that is down, slow or refusing therefore never holds a VM back, and the delivery goes on with
 * its own retry policy (backoff up to an hour and more) through the fleet's continue-as-new and after the
 * batch has ended, when a fire-and-forget activity of the fleet would have been dropped. Each delivery is
 * visible in the Web UI under the batch's ID.
 */
import { ParentClosePolicy, log, patched, proxyActivities, startChild, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NotifyCounts, NotifyEvent } from '../common/contracts/notify';
import type { VmFinished } from './messages';
import { FLEET_NOTIFY_PATCH } from './versions';

type Omitted<E> = E extends unknown ? Omit<E, 'id' | 'batch' | 'time'> : never;

const delivery = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  // Past this the event is given up (the workflow fails, visibly): a receiver down for a day gets the report.
  scheduleToCloseTimeout: '6 hours',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '10 minutes',
    nonRetryableErrorTypes: ['NotifyRefused', 'NotifySecretMissing', 'NotifyReceiverUnknown'],
  },
  summary: 'POST the event to the --notify receiver',
});

/** Whom a batch notifies: a receiver name (the URL is the workers'), or an older batch's URL. */
export type NotifyTarget = { receiver: string } | { url: string };

/** Delivers one event (activities/notify.ts resolves the receiver, signs and POSTs it). */
export async function notifyWorkflow(input: NotifyTarget & { event: NotifyEvent }): Promise<void> {
  await delivery.sendNotification(input);
}

export function notifyTargetOf(input: { notifyReceiver?: string; notifyUrl?: string }): NotifyTarget | undefined {
  if (input.notifyReceiver !== undefined) return { receiver: input.notifyReceiver };
  return input.notifyUrl === undefined ? undefined : { url: input.notifyUrl };
}

/** The fleet's side: builds the events and starts their deliveries. */
export class FleetNotifier {
  readonly enabled: boolean;
  private starting = 0;
  private sequence = 0;
  /** The wave whose VMs are being started or run; its end is announced when the next begins or the batch ends. */
  private openWave: number | undefined;

  constructor(
    private readonly batch: string,
    private readonly target: NotifyTarget | undefined
  ) {
    // Only a batch started with --notify records the marker (and emits the commands).
    this.enabled = target !== undefined && patched(FLEET_NOTIFY_PATCH);
  }

  /** No delivery is waiting for its start (continue-as-new and the end wait for this). */
  idle(): boolean {
    return this.starting === 0;
  }

  vmEnded(finished: VmFinished): void {
    if (finished.phase !== 'Failed') return;
    const error = finished.error ?? { type: 'Error', message: 'failed' };
    void this.send({
      type: 'vm.failed',
      vm: { name: finished.vm, errorType: error.type, message: error.message, instanceId: finished.instanceId },
    });
  }

  /**
   * The fleet is about to start a new row of `wave` with no VM running: if another wave was open, it ended.
   * Also called for every started new row, to know the open wave.
   */
  waveAhead(wave: number, counts: NotifyCounts, nothingRunning: boolean): void {
    if (this.openWave !== undefined && wave !== this.openWave && nothingRunning) {
      void this.send({ type: 'wave.ended', wave: this.openWave, counts });
      this.openWave = wave;
    } else if (this.openWave === undefined) this.openWave = wave;
  }

  /** The last wave's end, then the batch's: resolves once both deliveries have started. */
  async batchEnded(
    counts: NotifyCounts & { total: number },
    report: { bucketKeyJson: string; bucketKeyHtml: string } | undefined,
    state: 'completed' | 'failed' | 'cancelled'
  ): Promise<void> {
    // A cancelled batch's open wave did not end: it was cut short, which batch.ended says.
    if (this.openWave !== undefined && state !== 'cancelled')
      await this.send({ type: 'wave.ended', wave: this.openWave, counts });
    await this.send({ type: 'batch.ended', state, counts, report });
  }

  private async send(partial: Omitted<NotifyEvent>): Promise<void> {
    if (!this.enabled || this.target === undefined) return;
    const { workflowId, runId } = workflowInfo();
    // Unique and replay-stable: the run and the event's place in it.
    const id = `${workflowId}/notify/${runId}/${++this.sequence}`;
    const event = { ...partial, id, batch: this.batch, time: new Date().toISOString() };
    this.starting += 1;
    try {
      const child = await startChild(notifyWorkflow, {
        workflowId: id,
        args: [{ ...this.target, event }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        // Never the URL: an older batch's could hold a token.
        staticSummary: `${event.type} → ${'receiver' in this.target ? `receiver ${this.target.receiver}` : 'the --notify URL'}`,
      });
      void child.result().catch(() => undefined);
    } catch (err) {
      // A notification never fails the batch.
      log.warn('could not start a notification', { id, error: (err as Error).message });
    } finally {
      this.starting -= 1;
    }
  }
}
