/**
 * Activity option profiles. Fast AWS calls retry quickly; the upload is long, heartbeats and may run on a
 * site task queue; failures the operator must fix are never retried.
 *
 * Every profile has a schedule-to-close window: a retry policy without `maximumAttempts` or a window retries
 * a failure it cannot fix (a bug, a lost permission read as "unexpected") for ever. The window is the time
 * left to the VM's deadline when the profile is given the VM's settings, never less than
 * MIN_ACTIVITY_WINDOW_SECONDS (the cleanup after a missed deadline still runs), and
 * DEFAULT_ACTIVITY_WINDOW_SECONDS without them. Within it, AWS throttling and outages keep being retried;
 * unexpected failures stop after UNEXPECTED_MAX_ATTEMPTS (common/failures.ts, applied by the worker).
 * Retry options are not part of a workflow's command sequence: changing them is replay-safe.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
// Type-only: activities run in the worker, never in the workflow sandbox.
import type { Activities } from '../activities';
import type { AwsAccount, MigrationSettings } from '../common/contracts/migration';
import { NON_RETRYABLE_FAILURE_TYPES } from '../common/failures';
import type { ActivityNameOn } from '../common/task-queues';
import { awsApiFairnessKeyOf } from '../common/task-queues';
import { VM_AWS_API_FAIRNESS_KEY_PATCH } from './versions';

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

/** The window of a VM activity started at or after the VM's deadline (cleanup, a last describe). */
export const MIN_ACTIVITY_WINDOW_SECONDS = 15 * 60;
/** The window of a VM activity whose profile is not given the VM's settings. */
export const DEFAULT_ACTIVITY_WINDOW_SECONDS = 60 * 60;

/** What a profile needs to know of the VM's deadline (MigrationSettings has it). */
export type DeadlineSettings = Pick<MigrationSettings, 'deadlineSeconds'>;

/**
 * Seconds from `nowMs` that an activity may take, all attempts included: until the deadline (the workflow's
 * start + `deadlineSeconds`), at least MIN_ACTIVITY_WINDOW_SECONDS; DEFAULT_ACTIVITY_WINDOW_SECONDS when the
 * deadline is not known. Pure, for tests; `activityWindow` reads the workflow's clock.
 */
export function activityWindowSeconds(
  settings: Partial<DeadlineSettings> | undefined,
  startMs: number,
  nowMs: number
): number {
  if (!settings?.deadlineSeconds) return DEFAULT_ACTIVITY_WINDOW_SECONDS;
  const left = Math.ceil((startMs + settings.deadlineSeconds * 1000 - nowMs) / 1000);
  return Math.max(MIN_ACTIVITY_WINDOW_SECONDS, left);
}

/**
 * What puts an activity on the AWS API queue under its account+Region's budget: the fairness key
 * (common/task-queues.ts awsApiFairnessKeyOf). Absent = the unkeyed budget, one for every activity without
 * an account (VMs started before accounts, rollback, the account look-up itself).
 */
export interface AwsApiKey {
  awsApiFairnessKey?: string;
}

/** A VM's settings as its workflow (and its data disks' children, which take them as input) use them. */
export type VmSettings = MigrationSettings & AwsApiKey;

/**
 * The settings a VM workflow runs with: the batch's, plus the fairness key of the account+Region the fleet
 * resolved for it. Called once, at the VM workflow's start, so a VM keeps one answer for its whole run; the
 * patch keeps VMs started before unkeyed on replay.
 */
export function vmSettingsFor(settings: MigrationSettings, aws: AwsAccount | undefined): VmSettings {
  if (!aws || !patched(VM_AWS_API_FAIRNESS_KEY_PATCH)) return settings;
  return { ...settings, awsApiFairnessKey: awsApiFairnessKeyOf(aws) };
}

/** The `priority` of an activity on the AWS API queue (exported for tests). */
export function awsApiPriority(key: AwsApiKey | undefined): Pick<ActivityOptions, 'priority'> {
  return key?.awsApiFairnessKey ? { priority: { fairnessKey: key.awsApiFairnessKey } } : {};
}

/** How a profile learns its window, in milliseconds (tests pass their own clock). */
export type ActivityWindow = (settings: Partial<DeadlineSettings> | undefined) => number;

/** `scheduleToCloseTimeout` (ms) for an activity scheduled now by the current workflow. */
const activityWindow: ActivityWindow = (settings) =>
  activityWindowSeconds(settings, workflowInfo().startTime.getTime(), Date.now()) * 1000;

const fastCall: ActivityOptions = {
  // Long enough for the largest manifest (a 2 TiB image's: 629,000 presigned URLs, over 1 GB, took about two
  // minutes on a busy test machine); a crashed worker is still noticed within the heartbeat timeout.
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
  },
};

/** The options of a short activity (exported for tests: a proxy does not show its options). */
export function fastCallOptions(
  summary: string | undefined,
  settings: Partial<DeadlineSettings> | undefined,
  window: ActivityWindow = activityWindow
): ActivityOptions {
  return { ...fastCall, summary, scheduleToCloseTimeout: window(settings) };
}

/**
 * Short activities on the workflow's own queue (the main queue serves every activity). With the VM's
 * settings, bounded by its deadline; without, by DEFAULT_ACTIVITY_WINDOW_SECONDS.
 */
export function mainQueueActivities(summary?: string, settings?: DeadlineSettings): Activities {
  return proxyActivities<Activities>(fastCallOptions(summary, settings));
}

/**
 * The activities that call EC2, on the AWS API task queue (settings.awsApiTaskQueue) under the VM's
 * account+Region fairness key: the queue's per-key rate limit is the AWS API request budget of each account
 * and Region (`vmconvoy set-limits --max-api-rate`). Unset queue = the workflow's queue.
 */
export function awsApiActivities(
  summary: string,
  settings: Pick<MigrationSettings, 'awsApiTaskQueue'> & Partial<DeadlineSettings> & AwsApiKey
): AwsApiActivities {
  return proxyActivities<AwsApiActivities>(awsApiOptions(summary, settings));
}

/** The options of awsApiActivities (exported for tests: a proxy does not show its options). */
export function awsApiOptions(
  summary: string,
  settings: Pick<MigrationSettings, 'awsApiTaskQueue'> & Partial<DeadlineSettings> & AwsApiKey,
  window: ActivityWindow = activityWindow
): ActivityOptions {
  return {
    ...fastCallOptions(summary, settings, window),
    taskQueue: settings.awsApiTaskQueue,
    ...awsApiPriority(settings),
  };
}

/**
 * ImportInstance on the AWS API queue. It may wait for EC2 to list the task of a send whose answer was
 * lost (up to settings.importListingWaitSeconds, 90 s by default, after that send) and for EC2 to list the
 * new instance before tagging it (at most 60 s), heartbeating throughout: 5 minutes holds both with room.
 * Only ScheduleActivityTask attributes change, not the commands, so running histories replay unchanged.
 */
export function importActivities(
  settings: Pick<MigrationSettings, 'awsApiTaskQueue' | 'importListingWaitSeconds'> &
    Partial<DeadlineSettings> &
    AwsApiKey
): AwsApiActivities {
  const seconds = Math.max(300, 2 * (settings.importListingWaitSeconds ?? 90) + 120);
  return proxyActivities<AwsApiActivities>({
    ...awsApiOptions('ImportInstance', settings),
    startToCloseTimeout: `${seconds} seconds`,
  });
}

/** The boot check's options (exported for tests). */
export function validationOptions(
  timeoutSeconds: number,
  taskQueue: string | undefined,
  settings: (Partial<DeadlineSettings> & AwsApiKey) | undefined,
  window: ActivityWindow = activityWindow
): ActivityOptions {
  return {
    ...fastCall,
    taskQueue,
    ...awsApiPriority(settings),
    startToCloseTimeout: `${timeoutSeconds + 300} seconds`,
    // At least one whole boot check, whatever the deadline says.
    scheduleToCloseTimeout: Math.max(window(settings), (timeoutSeconds + 300) * 1000),
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    summary: 'validate the imported instance',
  };
}

/** The boot check waits minutes for an instance to come up; it heartbeats while it polls. */
export function validationActivities(
  timeoutSeconds: number,
  taskQueue?: string,
  settings?: DeadlineSettings & AwsApiKey
): AwsApiActivities {
  return proxyActivities<AwsApiActivities>(validationOptions(timeoutSeconds, taskQueue, settings));
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
  return proxyActivities<SiteActivities>(uploadOptions(taskQueue, deadlineSeconds, heartbeatSeconds));
}

/** The upload's options (exported for tests). */
export function uploadOptions(
  taskQueue: string | undefined,
  deadlineSeconds: number,
  heartbeatSeconds: number,
  window: ActivityWindow = activityWindow
): ActivityOptions {
  return {
    startToCloseTimeout: `${deadlineSeconds} seconds`,
    scheduleToCloseTimeout: window({ deadlineSeconds }),
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
  };
}
