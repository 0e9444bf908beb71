/**
 * The batch's end (issue 20): its report into S3 (JSON and HTML, the record that outlives Temporal's
 * retention; never for a dry run), then the batch.ended notification. Neither decides the batch's outcome.
 */
import { condition, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NotifyCounts } from '../common/contracts/notify';
import { SHORT_HEARTBEAT_TIMEOUT } from './activity-profiles';
import type { FleetNotifier } from './notify';

export type BatchEndState = 'completed' | 'failed' | 'cancelled';

/** The batch's report at its end: minutes for thousands of VM histories; a failure never fails the batch. */
const batchEnd = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
  summary: "write the batch's report to S3",
});

/** `reportPatch`: the patch that guards the report on this path (absent: the caller checked its own). */
export async function writeBatchEnd(
  fleet: { batch: string; dryRun: boolean; conversionLimit: number; notifier: FleetNotifier },
  counts: NotifyCounts & { total: number },
  state: BatchEndState,
  reportPatch?: string
): Promise<void> {
  let report: { bucketKeyJson: string; bucketKeyHtml: string } | undefined;
  // A dry run writes nothing to S3 (it costs nothing: issue 18); its report is `vmconvoy report`'s.
  if (!fleet.dryRun && (reportPatch === undefined || patched(reportPatch))) {
    try {
      const written = await batchEnd.writeBatchReport({
        batch: fleet.batch,
        namespace: workflowInfo().namespace,
        state,
        conversionLimit: fleet.conversionLimit,
      });
      report = { bucketKeyJson: written.jsonKey, bucketKeyHtml: written.htmlKey };
    } catch (err) {
      log.warn("the batch's report could not be written to S3", { error: (err as Error).message });
    }
  }
  if (fleet.notifier.enabled) {
    await fleet.notifier.batchEnded(counts, report, state);
    await condition(() => fleet.notifier.idle());
  }
}
