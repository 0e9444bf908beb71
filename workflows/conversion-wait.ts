/**
 * Waiting for EC2 to convert the image: a describe activity, then a durable timer whose interval grows
 * from seconds to minutes. Each round adds about eight history events, so even a 24-hour conversion at
 * the default 5 s → 300 s schedule stays far below Temporal's 10,240-event warning.
 */
import { ApplicationFailure, sleep } from '@temporalio/workflow';
import { FailureType } from '../common/failures';
import { awsApiActivities } from './activity-profiles';
import type { MigrationSettings } from '../common/contracts/migration';
import type { ConversionProgress } from '../common/contracts/activity-io';
import type { VmStatusTracker } from './vm-status';
import type { AwsTarget } from '../common/aws/targets';

/** Next poll interval: grow geometrically, never above the maximum (pure, unit-tested). */
export function nextPollInterval(
  currentSeconds: number,
  settings: Pick<MigrationSettings, 'pollBackoff' | 'pollMaxSeconds'>
): number {
  return Math.min(settings.pollMaxSeconds, Math.max(1, currentSeconds * settings.pollBackoff));
}

export async function waitForConversion(
  conversionTaskId: string,
  imageBytes: number,
  settings: MigrationSettings,
  deadline: number,
  /** The VM's status (or a data disk's: workflows/data-disks.ts), updated with each look. */
  tracker: Pick<VmStatusTracker, 'status' | 'update'>,
  /** --- accounts (issue 20): the VM's profile and Region (names only); absent = the worker's. */
  aws?: AwsTarget
): Promise<ConversionProgress> {
  const describe = awsApiActivities('DescribeConversionTasks', settings);
  let interval = settings.pollInitialSeconds;
  let previous: { at: number; percent: number } | undefined;
  for (;;) {
    const progress = await describe.describeConversion({ conversionTaskId, imageBytes, ...(aws ? { aws } : {}) });
    tracker.update({
      percent: progress.percent,
      statusMessage: progress.statusMessage || undefined,
      instanceId: progress.instanceId ?? tracker.status.instanceId,
      volumeId: progress.volumeId ?? tracker.status.volumeId,
    });
    if (progress.state === 'completed') return progress;
    if (progress.state === 'cancelled' || progress.state === 'cancelling') {
      const failure = progress.failure ?? {
        type: 'ConversionFailed',
        message: progress.statusMessage || 'EC2 cancelled the conversion task',
      };
      throw ApplicationFailure.nonRetryable(failure.message, failure.type);
    }
    if (Date.now() + interval * 1000 > deadline) {
      throw ApplicationFailure.nonRetryable(
        `conversion ${conversionTaskId} did not complete before the VM deadline (last status: ${progress.statusMessage || 'none'})`,
        FailureType.DeadlineExceeded
      );
    }
    // Back off geometrically, but when progress shows a rate, do not sleep past the expected finish.
    const now = Date.now();
    interval = nextPollInterval(interval, settings);
    if (previous && progress.percent > previous.percent) {
      const rate = (progress.percent - previous.percent) / ((now - previous.at) / 1000);
      const etaSeconds = (100 - progress.percent) / rate;
      interval = Math.min(interval, Math.max(settings.pollInitialSeconds, etaSeconds));
    }
    previous = { at: now, percent: progress.percent };
    await sleep(interval * 1000, { summary: `next conversion check in ${Math.round(interval)} s` });
  }
}
