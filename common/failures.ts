/**
 * Every ApplicationFailure type vmconvoy raises, and the one rule for which of them are retried. The
 * activities raise them (activities/aws-errors.ts, file-errors.ts, conversion-failures.ts…) and the
 * workflows' retry policies read `NON_RETRYABLE_FAILURE_TYPES` from here, so the two can never disagree.
 *
 * The rule: a failure is retryable when running the same activity again, unchanged, can succeed (AWS or
 * the network was busy or down, a part was damaged in transit). It is not when the operator must change
 * something first (the inventory, the image, the credentials), or when the workflow handles it itself.
 * Sandbox-safe: imported by workflow code, so it imports nothing.
 */
export const FailureType = {
  ImageNotFound: 'ImageNotFound',
  ImageUnreadable: 'ImageUnreadable',
  ImageFormatUnsupported: 'ImageFormatUnsupported',
  ImageFormatMismatch: 'ImageFormatMismatch',
  ImageOutsideRoots: 'ImageOutsideRoots',
  /** The inventory's volumeSizeGib is smaller than the disk. */
  InvalidVolumeSize: 'InvalidVolumeSize',
  /** The inventory's userDataFile is missing, unreadable or too large. */
  UserDataInvalid: 'UserDataInvalid',
  /** The image changed between pre-flight and upload (its size, or another file now at its path). */
  ImageChanged: 'ImageChanged',
  AwsInvalidParameter: 'AwsInvalidParameter',
  /** Any other client-side AWS error: AWS's message shown. */
  AwsRequestFailed: 'AwsRequestFailed',
  AwsAuth: 'AwsAuth',
  S3BucketMissing: 'S3BucketMissing',
  /** The conversion task ended cancelled/failed for a reason the operator must fix. */
  ConversionFailed: 'ConversionFailed',
  /** AWS cancelled the conversion for a transient reason: the workflow imports again (a bounded number of times). */
  ConversionInterrupted: 'ConversionInterrupted',
  ValidationFailed: 'ValidationFailed',
  /** The VM's deadline passed while it waited (for a conversion slot, for EC2's import quota, for a conversion). */
  DeadlineExceeded: 'DeadlineExceeded',
  /** A stored inventory page is not what the CLI wrote (edited or damaged in the bucket): the batch stops. */
  InventoryInvalid: 'InventoryInvalid',
  /** EC2's ResourceLimitExceeded on ImportInstance: the workflow waits `quotaRetrySeconds` and imports again. */
  ConversionQuotaExceeded: 'ConversionQuotaExceeded',
  AwsThrottled: 'AwsThrottled',
  AwsUnavailable: 'AwsUnavailable',
  /** Temporary credentials expired mid-call; the default chain refreshes them, so retrying helps. */
  AwsCredentialsExpired: 'AwsCredentialsExpired',
  /** S3 rejected a part's checksum (bytes damaged in transit): send it again. */
  S3ChecksumMismatch: 'S3ChecksumMismatch',
  /** Not an AWS answer at all: a bug or an unexpected local failure; retried (bounded by the activity's attempts). */
  Unexpected: 'UnexpectedError',
  /** The row breaks a rule of ImportInstance (instance type for Linux, 64-bit Linux, tags, sizes): refused before upload. */
  LaunchRuleViolated: 'LaunchRuleViolated',
  /** The look inside the guest predicts VM Import will fail (kernel, partition table, free space...): refused before upload. */
  GuestRefused: 'GuestRefused',
  /** The site worker's scratch folder cannot hold an image's conversion: the operator frees space or moves it. */
  ScratchSpaceShort: 'ScratchSpaceShort',
  /** The row's aws_profile or region cannot be served by the worker (unknown profile, no staging bucket there). */
  AwsTargetInvalid: 'AwsTargetInvalid',
} as const;

export type FailureTypeName = (typeof FailureType)[keyof typeof FailureType];

/**
 * Retried by the activity's retry policy or not. Every type must appear (the compiler checks it); the order
 * of the non-retryable ones is the order the workflows have always sent in their retry policies.
 */
const RETRYABLE: Record<FailureTypeName, boolean> = {
  ImageNotFound: false,
  ImageUnreadable: false,
  ImageFormatUnsupported: false,
  ImageFormatMismatch: false,
  ImageOutsideRoots: false,
  InvalidVolumeSize: false,
  UserDataInvalid: false,
  ImageChanged: false,
  AwsInvalidParameter: false,
  AwsRequestFailed: false,
  AwsAuth: false,
  S3BucketMissing: false,
  ConversionFailed: false,
  // Not retried as the same activity: the workflow imports again with fresh presigned URLs.
  ConversionInterrupted: false,
  ValidationFailed: false,
  DeadlineExceeded: false,
  // Not retried by the server: the workflow waits visibly (its status says why) and calls again.
  ConversionQuotaExceeded: false,
  InventoryInvalid: false,
  AwsThrottled: true,
  AwsUnavailable: true,
  AwsCredentialsExpired: true,
  S3ChecksumMismatch: true,
  UnexpectedError: true,
  // The row or the image must change first.
  LaunchRuleViolated: false,
  GuestRefused: false,
  // Last, so the non-retryable list keeps its order for running workflows.
  ScratchSpaceShort: false,
  // After it, for the same reason.
  AwsTargetInvalid: false,
};

/** True when running the same activity again can succeed (unknown types: true, as Temporal's default). */
export function isRetryableFailure(type: string): boolean {
  return (RETRYABLE as Record<string, boolean>)[type] ?? true;
}

/** For the activities' retry policies (`nonRetryableErrorTypes`). */
export const NON_RETRYABLE_FAILURE_TYPES: string[] = Object.entries(RETRYABLE)
  .filter(([, retryable]) => !retryable)
  .map(([type]) => type);

/**
 * Attempts after which a failure retried only because nothing says it is permanent (UnexpectedError, an
 * error that is not an ApplicationFailure: a bug, a local fault) is not retried any more. A bug does not go
 * away on the tenth try, and a retry policy has no per-type attempt limit, so the worker applies this one
 * (worker/attempt-cap.ts).
 */
export const UNEXPECTED_MAX_ATTEMPTS = 5;

/**
 * Failures that wait out AWS or the network: retried for as long as the activity's schedule-to-close
 * window (the VM's deadline, workflows/activity-profiles.ts) allows, however many attempts that takes.
 */
const RETRIED_WITHIN_WINDOW: ReadonlySet<string> = new Set<FailureTypeName>([
  FailureType.AwsThrottled,
  FailureType.AwsUnavailable,
  FailureType.AwsCredentialsExpired,
  FailureType.S3ChecksumMismatch,
]);

/** True when a retryable failure of this type has had its last attempt (`attempt` is 1-based). */
export function attemptsExhausted(type: string, attempt: number): boolean {
  if (!isRetryableFailure(type) || RETRIED_WITHIN_WINDOW.has(type)) return false;
  return attempt >= UNEXPECTED_MAX_ATTEMPTS;
}
