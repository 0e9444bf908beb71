/**
 * vmconvoy's own worker metrics, exported on the worker's Prometheus endpoint beside the SDK's (the
 * Temporal runtime's metric meter; activity context attributes such as task queue are added by the SDK).
 * Outside an activity (tests calling functions directly) they are no-ops.
 */
import { currentContext } from './activity-context';

export function recordBytesUploaded(bytes: number): void {
  currentContext()
    ?.metricMeter.createCounter('vmconvoy_bytes_uploaded', 'By', 'Disk image bytes uploaded to S3')
    .add(bytes);
}

/** A part sent again: by a retried upload attempt, or because S3 held a different object under its key. */
export function recordPartRetried(): void {
  currentContext()?.metricMeter.createCounter('vmconvoy_parts_retried', '1', 'Image parts uploaded again').add(1);
}

/** Every AWS/S3 error an activity saw, by AWS error code (RequestLimitExceeded, InternalError, ...). */
export function recordAwsError(code: string): void {
  currentContext()?.metricMeter.createCounter('vmconvoy_aws_errors', '1', 'AWS API errors by code').add(1, { code });
}
