/**
 * Where an AWS or S3 error becomes a user message: a stable failure type (common/failures.ts decides which
 * are retried), and a message that says what to do next. Never any presigned query string, user data or
 * credential (common/redact.ts), never any of a hostile response's body.
 */
import { ApplicationFailure } from '@temporalio/common';
import { NotAnAwsResponseError } from '../common/aws/ec2-answer-guard';
import type { FailureTypeName } from '../common/failures';
import { FailureType, isRetryableFailure } from '../common/failures';
import { redact } from '../common/redact';
import type { AwsLikeError } from './aws-error-codes';
import {
  asAwsLike,
  AUTH,
  awsErrorName,
  CREDENTIALS_EXPIRED,
  INVALID_PARAMETER,
  NETWORK_CODES,
  RESET_CODES,
  THROTTLING,
  UNAVAILABLE,
} from './aws-error-codes';
import { recordAwsError } from './metrics';

export interface ErrorContext {
  /** What was being done, in operator words: `ImportInstance`, `upload of part 3`. */
  operation: string;
  /** The service called, for messages about its endpoint. @default 'AWS' */
  service?: 'EC2' | 'S3';
  /** The activity attempt (grows the throttling delay). @default 1 */
  attempt?: number;
  bucket?: string;
}

/** Delay in seconds before retrying a throttled call: 5, 10, 20, 40, 60, 60… by attempt, plus up to 25 % jitter. */
export function throttleDelaySeconds(attempt: number): number {
  const base = Math.min(60, 5 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + Math.random() * 0.25));
}

const IAM_HINT =
  'Check the credentials of the worker (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or its profile/role) and that its IAM policy ' +
  'grants the permissions listed in the README (ec2:ImportInstance, ec2:DescribeConversionTasks, ec2:CancelConversionTask, ' +
  'ec2:DescribeInstances, ec2:DescribeVolumes, ec2:CreateTags, s3:GetObject/PutObject/DeleteObject/ListBucket on the bucket).';

/** A response that is not an answer: cut off, never finished, or not from AWS at all. */
interface HostileAnswer {
  kind: 'reset' | 'timeout' | 'garbage';
  /** For the metric and the failure details. */
  name: string;
  /** What happened, in operator words: never any of the response body. */
  reason: string;
  service?: 'EC2' | 'S3';
  status?: number;
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]!.trim();
}

/**
 * A success status whose body the SDK could not read (malformed XML, truncated): its deserializer attaches
 * the raw response as `$response`, and, unlike AWS's own errors, the error has no `$fault`.
 */
function isUnreadableAnswer(err: unknown, e: AwsLikeError): boolean {
  const status = e.$metadata?.httpStatusCode;
  return (
    typeof err === 'object' &&
    err !== null &&
    Object.prototype.hasOwnProperty.call(err, '$response') &&
    e.$fault === undefined &&
    (status === undefined || status < 300)
  );
}

function hostileAnswer(err: unknown, e: AwsLikeError): HostileAnswer | undefined {
  if (err instanceof NotAnAwsResponseError)
    return { kind: 'garbage', name: err.name, reason: err.reason, service: err.service, status: err.httpStatus };
  const code = e.code ?? '';
  // Node's "socket hang up" carries ECONNRESET; the SDK renames it TimeoutError, so look at the code first.
  if (RESET_CODES.has(code) || (e.name !== 'AbortError' && /socket hang up/i.test(e.message ?? '')))
    return {
      kind: 'reset',
      name: code || 'ECONNRESET',
      reason: [code, firstLine(e.message)].filter(Boolean).join(': '),
    };
  if (e.name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    const what = firstLine(e.message).replace(/^@smithy\/node-http-handler - (\[\w+\] )?/, '');
    return { kind: 'timeout', name: 'TimeoutError', reason: what || 'timed out' };
  }
  if (isUnreadableAnswer(err, e)) {
    const reason = /XML parse error/i.test(e.message ?? '')
      ? 'a body that is not well-formed XML'
      : 'a body the SDK could not read';
    return { kind: 'garbage', name: 'NotAnAwsResponse', reason };
  }
  return undefined;
}

/**
 * Classifies an error thrown by an AWS SDK call (EC2 or S3) or by the network below it. ApplicationFailures
 * pass through unchanged. Answers that are not answers (timed out, reset, unparseable, refused by the EC2
 * clients' guard) are retryable AwsUnavailable whose message names the operation, never the body.
 */
export function classifyAwsError(err: unknown, ctx: ErrorContext): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = asAwsLike(err);
  const hostile = hostileAnswer(err, e);
  const name = hostile?.name ?? awsErrorName(err) ?? 'Error';
  recordAwsError(name);
  const status = e.$metadata?.httpStatusCode ?? hostile?.status;
  const awsMessage = redact(e.message && e.message !== name ? e.message : '');
  const said = awsMessage ? `${name}: ${awsMessage}` : name;
  const details = [{ awsCode: name, httpStatus: status ?? null, requestId: e.$metadata?.requestId ?? null }];
  const make = (type: FailureTypeName, message: string, nextRetryDelaySeconds?: number): ApplicationFailure =>
    ApplicationFailure.create({
      type,
      nonRetryable: !isRetryableFailure(type),
      message: redact(`${ctx.operation} failed: ${message}`),
      details,
      nextRetryDelay: nextRetryDelaySeconds !== undefined ? `${nextRetryDelaySeconds} seconds` : undefined,
    });

  if (hostile) {
    const service = ctx.service ?? hostile.service ?? 'AWS';
    if (hostile.kind === 'timeout')
      return make(
        FailureType.AwsUnavailable,
        `the ${service} endpoint did not answer in time (${hostile.reason}); retrying.`
      );
    if (hostile.kind === 'reset')
      return make(
        FailureType.AwsUnavailable,
        `the connection to the ${service} endpoint closed before a complete answer (${hostile.reason}); retrying.`
      );
    const where =
      service === 'AWS'
        ? 'the endpoint settings (AWS_ENDPOINT_URL_*)'
        : `AWS_ENDPOINT_URL_${service} (unset for real ${service})`;
    return make(
      FailureType.AwsUnavailable,
      `the ${service} endpoint answered something that is not an ${service} response (${hostile.reason}` +
        `${status !== undefined ? `, HTTP ${status}` : ''}); retrying. If this persists, check ${where} and any proxy between the worker and ${service}.`
    );
  }
  if (name === 'ResourceLimitExceeded') {
    return make(
      FailureType.ConversionQuotaExceeded,
      `${said}. Too many conversion tasks are running in this account and Region (EC2 allows about 5); ` +
        `the VM waits and tries again (its status shows it). Lower the fleet's conversion limit or ask AWS for a higher quota.`
    );
  }
  if (THROTTLING.has(name) || status === 429) {
    const wait = throttleDelaySeconds(ctx.attempt ?? 1);
    return make(
      FailureType.AwsThrottled,
      `${said}. AWS is throttling requests; retrying in ${wait} s. If this persists, lower the fleet's concurrency.`,
      wait
    );
  }
  if (CREDENTIALS_EXPIRED.has(name)) {
    return make(
      FailureType.AwsCredentialsExpired,
      `${said}. The credentials (or the clock) are out of date; retrying with refreshed credentials. If it repeats, check the host clock and the credential source.`
    );
  }
  if (AUTH.has(name) || status === 401 || status === 403) {
    return make(FailureType.AwsAuth, `${said}. ${IAM_HINT}`);
  }
  if (name === 'NoSuchBucket') {
    const bucket = ctx.bucket ? `"${ctx.bucket}"` : 'the staging bucket';
    return make(
      FailureType.S3BucketMissing,
      `${said}. Create ${bucket} in the EC2 Region, or set VMCONVOY_BUCKET to an existing bucket there.`
    );
  }
  if (name === 'BadDigest' || name === 'InvalidDigest') {
    return make(
      FailureType.S3ChecksumMismatch,
      `${said}. The part's bytes changed on the way to S3 (checksum mismatch); sending it again.`
    );
  }
  if (
    INVALID_PARAMETER.has(name) ||
    /^Invalid.*(\.NotFound|\.Malformed|ID|Id)$/.test(name) ||
    /\.(NotFound|Malformed)$/.test(name)
  ) {
    return make(
      FailureType.AwsInvalidParameter,
      `${said}. Fix the VM's settings in the inventory (or the image) and run the VM again.`
    );
  }
  if (
    UNAVAILABLE.has(name) ||
    NETWORK_CODES.has(e.code ?? '') ||
    NETWORK_CODES.has(name) ||
    (status !== undefined && status >= 500) ||
    e.$fault === 'server'
  ) {
    return make(FailureType.AwsUnavailable, `${said}. A temporary AWS or network problem; retrying.`);
  }
  if (status !== undefined && status >= 400) {
    return make(FailureType.AwsRequestFailed, `${said} (HTTP ${status}).`);
  }
  // Not an AWS answer at all: a bug or an unexpected local failure. Retry; the message says what it was.
  return make(FailureType.Unexpected, said);
}
