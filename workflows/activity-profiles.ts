/**
 * Activity option profiles. Fast AWS calls retry quickly; the upload is long, heartbeats and may run on a
 * site task queue; failures the operator must fix are never retried.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
// Type-only: activities run in the worker, never in the workflow sandbox.
import type { Activities } from '../activities';
import type { MigrationSettings } from '../common/contracts/migration';
import { NON_RETRYABLE_FAILURE_TYPES } from '../common/failures';
import type { ActivityNameOn } from '../common/task-queues';

/** What the AWS API queue's workers run (common/task-queues.ts), and what a site queue's run. */
export type AwsApiActivities = Pick<Activities, ActivityNameOn<'awsApi'>>;
export type SiteActivities = Pick<Activities, ActivityNameOn<'upload'>>;

/** ApplicationFailure types that retrying cannot fix (common/failures.ts holds the rule). */
export const NON_RETRYABLE_TYPES = NON_RETRYABLE_FAILURE_TYPES;

/**
 * Short activities heartbeat while they run (activities/activity-context.ts keepAlive), so a crashed
 * worker's call is retried elsewhere after this long, not after its whole start-to-close timeout.
 */
export const SHORT_HEARTBEAT_TIMEOUT = '20 seconds';

const fastCall: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
  },
};

/** Short activities on the workflow's own queue (the main queue serves every activity). */
export function fastActivities(summary?: string): Activities {
  return proxyActivities<Activities>({ ...fastCall, summary });
}

/**
 * The activities that call EC2, on the AWS API task queue (settings.awsApiTaskQueue): its server-side rate
 * limit is the AWS API request budget (`vmconvoy set-limits --max-api-rate`). Unset = the workflow's queue.
 */
export function awsApiActivities(
  summary: string,
  settings: Pick<MigrationSettings, 'awsApiTaskQueue'>
): AwsApiActivities {
  return proxyActivities<AwsApiActivities>({ ...fastCall, summary, taskQueue: settings.awsApiTaskQueue });
}

/**
 * ImportInstance on the AWS API queue. It may wait for EC2 to list the task of a send whose answer was
 * lost (up to settings.importListingWaitSeconds, 90 s by default, after that send) and for EC2 to list the
 * new instance before tagging it (at most 60 s), heartbeating throughout: 5 minutes holds both with room.
 * Only ScheduleActivityTask attributes change, not the commands, so running histories replay unchanged.
 */
export function importActivities(
  settings: Pick<MigrationSettings, 'awsApiTaskQueue' | 'importListingWaitSeconds'>
): AwsApiActivities {
  const seconds = Math.max(300, 2 * (settings.importListingWaitSeconds ?? 90) + 120);
  return proxyActivities<AwsApiActivities>({
    ...fastCall,
    startToCloseTimeout: `${seconds} seconds`,
    summary: 'ImportInstance',
    taskQueue: settings.awsApiTaskQueue,
  });
}

/** The boot check waits minutes for an instance to come up; it heartbeats while it polls. */
export function validationActivities(timeoutSeconds: number, taskQueue?: string): AwsApiActivities {
  return proxyActivities<AwsApiActivities>({
    ...fastCall,
    taskQueue,
    startToCloseTimeout: `${timeoutSeconds + 300} seconds`,
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    summary: 'validate the imported instance',
  });
}

/**
 * Upload: hours for big disks. The heartbeat timeout makes a crashed worker's upload restart on another
 * worker within a minute, resuming from the parts it had heartbeated. WAIT_CANCELLATION_COMPLETED so a
 * cancelled VM's cleanup never races an upload still writing parts.
 */
export function uploadActivities(
  taskQueue: string | undefined,
  deadlineSeconds: number,
  heartbeatSeconds: number
): SiteActivities {
  return proxyActivities<SiteActivities>({
    startToCloseTimeout: `${deadlineSeconds} seconds`,
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    taskQueue,
    summary: 'upload disk image parts to S3',
    retry: {
      initialInterval: '5 seconds',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
    },
  });
}
