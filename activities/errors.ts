/**
 * The one place where AWS, S3 and file-system errors become ApplicationFailures: a stable `type` the
 * workflow and the operator can rely on, retryable or not, and a message that says what to do next.
 * Messages never carry presigned-URL query strings, user data or credentials.
 */
import { recordAwsError } from './metrics';
import { ApplicationFailure } from '@temporalio/common';
import type { VmError } from '../workflows/types';

/** Failure types raised by the activities (the workflow lists the non-retryable ones). */
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
  /** The image changed between pre-flight and upload (size differs). */
  ImageChanged: 'ImageChanged',
  AwsThrottled: 'AwsThrottled',
  AwsUnavailable: 'AwsUnavailable',
  AwsInvalidParameter: 'AwsInvalidParameter',
  AwsAuth: 'AwsAuth',
  /** Temporary credentials expired mid-call; the default chain refreshes them, so retrying helps. */
  AwsCredentialsExpired: 'AwsCredentialsExpired',
  /** Any other client-side AWS error: not retried, AWS's message shown. */
  AwsRequestFailed: 'AwsRequestFailed',
  ConversionQuotaExceeded: 'ConversionQuotaExceeded',
  S3BucketMissing: 'S3BucketMissing',
  /** S3 rejected a part's checksum (bytes damaged in transit): send it again. */
  S3ChecksumMismatch: 'S3ChecksumMismatch',
  /** The conversion task ended cancelled/failed for a reason the operator must fix. */
  ConversionFailed: 'ConversionFailed',
  /** The conversion task was cancelled by AWS for a transient reason: running the VM again should work. */
  ConversionInterrupted: 'ConversionInterrupted',
  ValidationFailed: 'ValidationFailed',
  Unexpected: 'UnexpectedError',
} as const;

export interface ErrorContext {
  /** What was being done, in operator words: `ImportInstance`, `upload of part 3`. */
  operation: string;
  /** The service called, for messages about its endpoint. @default 'AWS' */
  service?: 'EC2' | 'S3';
  /** Delay before retrying ImportInstance after ResourceLimitExceeded. @default 60 */
  quotaRetrySeconds?: number;
  /** The activity attempt (grows the throttling delay). @default 1 */
  attempt?: number;
  bucket?: string;
}

/** The shape of errors thrown by AWS SDK v3 clients (and of Node's network errors). */
interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'EC2ThrottledException',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'LimitExceededException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
]);

const UNAVAILABLE = new Set([
  'InternalError',
  'InternalFailure',
  'Unavailable',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InsufficientCapacity',
  'InsufficientInstanceCapacity',
  'Unknown',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
  'IncompleteBody',
]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The connection closed before a complete answer. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * Thrown by the EC2 clients' response guard (aws-clients.ts) for an answer EC2 never gives: a 2xx that is
 * not XML (a proxy's or load balancer's page), or a body over the size limit. Retryable.
 */
export class NotAnAwsResponseError extends Error {
  override name = 'NotAnAwsResponse';
  constructor(
    readonly service: 'EC2' | 'S3',
    /** What came instead, in operator words; never any of the body. */
    readonly reason: string,
    readonly httpStatus: number
  ) {
    super(`the ${service} endpoint answered ${reason} (HTTP ${httpStatus}), not an ${service} response`);
  }
}

const AUTH = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'SignatureDoesNotMatch',
  'InvalidClientTokenId',
  'InvalidAccessKeyId',
  'AccessDenied',
  'AccessDeniedException',
  'OptInRequired',
  'Blocked',
  'PendingVerification',
]);

const CREDENTIALS_EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired']);

const INVALID_PARAMETER = new Set([
  'InvalidParameterValue',
  'InvalidParameter',
  'MissingParameter',
  'InvalidParameterCombination',
  'UnknownParameter',
  'InvalidFormat',
  'DiskImageSizeTooLarge',
  'InvalidManifest',
  'Unsupported',
  'UnsupportedOperation',
  'InvalidArgument',
  'InvalidRequest',
  'EntityTooLarge',
  'InvalidBucketName',
  'InvalidAction',
  'ValidationError',
]);

function asAwsLike(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? err : { message: String(err) };
}

/** The AWS error code (`name` of SDK errors) or Node error code, if any. */
export function awsErrorName(err: unknown): string | undefined {
  const e = asAwsLike(err);
  return e.name && e.name !== 'Error' ? e.name : e.code;
}

export function httpStatusOf(err: unknown): number | undefined {
  return asAwsLike(err).$metadata?.httpStatusCode;
}

/** True for SDK errors with one of these codes (names). */
export function isAwsError(err: unknown, ...names: string[]): boolean {
  const name = awsErrorName(err);
  return name !== undefined && names.includes(name);
}

/** True when S3/HEAD says the object (or bucket) is not there. */
export function isNotFound(err: unknown): boolean {
  return isAwsError(err, 'NotFound', 'NoSuchKey') || (httpStatusOf(err) === 404 && !isAwsError(err, 'NoSuchBucket'));
}

/**
 * Removes what must never reach a workflow history: presigned query strings (X-Amz-*, SigV2 Signature),
 * access keys and anything that looks like a secret, and bounds the length.
 */
export function redact(message: string): string {
  return message
    .replace(/(https?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*/g, '$1?<query removed>')
    .replace(/X-Amz-[A-Za-z-]+=[^&\s"'<>]*/g, 'X-Amz-<removed>')
    .replace(/\b(Signature|AWSAccessKeyId|Credential|Security-Token)=[^&\s"'<>]*/gi, '$1=<removed>')
    .replace(/\b(AKIA|ASIA)[A-Z0-9]{12,}\b/g, '<access key id>')
    .slice(0, 1500);
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
  const make = (
    type: string,
    nonRetryable: boolean,
    message: string,
    nextRetryDelaySeconds?: number
  ): ApplicationFailure =>
    ApplicationFailure.create({
      type,
      nonRetryable,
      message: redact(`${ctx.operation} failed: ${message}`),
      details,
      nextRetryDelay: nextRetryDelaySeconds !== undefined ? `${nextRetryDelaySeconds} seconds` : undefined,
    });

  if (hostile) {
    const service = ctx.service ?? hostile.service ?? 'AWS';
    if (hostile.kind === 'timeout')
      return make(
        FailureType.AwsUnavailable,
        false,
        `the ${service} endpoint did not answer in time (${hostile.reason}); retrying.`
      );
    if (hostile.kind === 'reset')
      return make(
        FailureType.AwsUnavailable,
        false,
        `the connection to the ${service} endpoint closed before a complete answer (${hostile.reason}); retrying.`
      );
    const where =
      service === 'AWS'
        ? 'the endpoint settings (AWS_ENDPOINT_URL_*)'
        : `AWS_ENDPOINT_URL_${service} (unset for real ${service})`;
    return make(
      FailureType.AwsUnavailable,
      false,
      `the ${service} endpoint answered something that is not an ${service} response (${hostile.reason}` +
        `${status !== undefined ? `, HTTP ${status}` : ''}); retrying. If this persists, check ${where} and any proxy between the worker and ${service}.`
    );
  }
  if (name === 'ResourceLimitExceeded') {
    const wait = ctx.quotaRetrySeconds ?? 60;
    return make(
      FailureType.ConversionQuotaExceeded,
      false,
      `${said}. Too many conversion tasks are running in this account and Region (EC2 allows about 5); ` +
        `the VM waits and tries again (its status shows it). Lower the fleet's conversion limit or ask AWS for a higher quota.`,
      wait
    );
  }
  if (THROTTLING.has(name) || status === 429) {
    const wait = throttleDelaySeconds(ctx.attempt ?? 1);
    return make(
      FailureType.AwsThrottled,
      false,
      `${said}. AWS is throttling requests; retrying in ${wait} s. If this persists, lower the fleet's concurrency.`,
      wait
    );
  }
  if (CREDENTIALS_EXPIRED.has(name)) {
    return make(
      FailureType.AwsCredentialsExpired,
      false,
      `${said}. The credentials (or the clock) are out of date; retrying with refreshed credentials. If it repeats, check the host clock and the credential source.`
    );
  }
  if (AUTH.has(name) || status === 401 || status === 403) {
    return make(FailureType.AwsAuth, true, `${said}. ${IAM_HINT}`);
  }
  if (name === 'NoSuchBucket') {
    const bucket = ctx.bucket ? `"${ctx.bucket}"` : 'the staging bucket';
    return make(
      FailureType.S3BucketMissing,
      true,
      `${said}. Create ${bucket} in the EC2 Region, or set VMCONVOY_BUCKET to an existing bucket there.`
    );
  }
  if (name === 'BadDigest' || name === 'InvalidDigest') {
    return make(
      FailureType.S3ChecksumMismatch,
      false,
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
      true,
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
    return make(FailureType.AwsUnavailable, false, `${said}. A temporary AWS or network problem; retrying.`);
  }
  if (status !== undefined && status >= 400) {
    return make(FailureType.AwsRequestFailed, true, `${said} (HTTP ${status}).`);
  }
  // Not an AWS answer at all: a bug or an unexpected local failure. Retry; the message says what it was.
  return make(FailureType.Unexpected, false, said);
}

// ---------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------

/** A file-system error while reading a disk image → ImageNotFound / ImageUnreadable (both final). */
export function classifyFileError(err: unknown, file: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const code = asAwsLike(err).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return ApplicationFailure.nonRetryable(
      `Disk image ${file} does not exist on this host. Fix the path in the inventory, or run the upload on the site task queue of the hosts that hold the images.`,
      FailureType.ImageNotFound
    );
  }
  const reason =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied: give the worker user read access'
      : code === 'ELOOP'
        ? 'too many symbolic links'
        : code === 'EISDIR'
          ? 'it is a directory'
          : `${code ?? 'error'}: ${asAwsLike(err).message ?? ''}`;
  return ApplicationFailure.nonRetryable(`Disk image ${file} cannot be read (${reason}).`, FailureType.ImageUnreadable);
}

// ---------------------------------------------------------------------------------------------------
// Conversion task failures (asynchronous status messages)
// ---------------------------------------------------------------------------------------------------

interface ConversionHint {
  match: RegExp;
  hint: string;
  /** AWS's own transient failure: running the VM again should succeed. */
  transient?: boolean;
}

const CONVERSION_HINTS: ConversionHint[] = [
  {
    match: /No bootable partition found/i,
    hint: 'ImportInstance boots only MBR-partitioned disks; this root disk is GPT (or has no active partition). Convert the partition table to MBR (e.g. `gdisk` recovery menu, or `sgdisk --gpttombr`) and export the image again.',
  },
  {
    match: /Footers not identical/i,
    hint: 'The VHD is a differencing disk or its footer copies differ (damaged or truncated). Merge/re-export it, or convert: `qemu-img convert -f vpc -O vpc -o subformat=fixed in.vhd out.vhd`.',
  },
  {
    match: /Unsupported VMDK File Format|unsupported compression algorithm|Uncompressed data has an invalid length/i,
    hint: 'The VMDK is not a valid stream-optimized VMDK. Convert it: `qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized in.vmdk out.vmdk`.',
  },
  {
    match: /Unsupported kernel version/i,
    hint: "The guest's kernel is not on the VM Import support list. Boot a supported distribution kernel by default, then export the image again.",
  },
  {
    match: /Linux is not supported on the requested instance/i,
    hint: 'Linux imports run only on some instance types (t2.micro/small/medium, m3.*, c3.*, r3.*, i2.*, …). Change instanceType in the inventory.',
  },
  {
    match: /AWS initiated task cancellation|SERVER_ERROR/i,
    hint: 'AWS cancelled the conversion on its side (a transient failure seen in about 1 % of imports). Run the VM again; uploaded parts are reused.',
    transient: true,
  },
  {
    match: /expired/i,
    hint: 'The task expired before EC2 could read the whole image (upload not finished or presigned URLs expired). Run the VM again; uploaded parts are reused.',
    transient: true,
  },
  {
    match: /Invalid S3 source location|403 Forbidden|do not have access/i,
    hint: 'EC2 could not read the manifest or a part: the presigned URLs expired or the objects were deleted. Run the VM again.',
    transient: true,
  },
  {
    match: /not local to the Region/i,
    hint: 'The staging bucket must be in the same Region as EC2. Set VMCONVOY_BUCKET to a bucket in that Region.',
  },
  {
    match: /Unknown OS|Missing OS files|No valid partitions|Not a valid volume/i,
    hint: 'EC2 found no supported operating system on the disk. Check that the image is the boot disk and that its OS is on the VM Import support list.',
  },
  {
    match: /FirstBootFailure|Booter Networking failure|instance not reachable/i,
    hint: 'Windows did not boot or reach the network after conversion. Enable DHCP on a single NIC, uninstall VMware Tools, disable antivirus and pending updates, then export again.',
  },
  {
    match: /fstab|volume group activation|Multiple directories|initramfs|GRUB|BLSC/i,
    hint: 'EC2 could not adapt the Linux boot configuration. Check /etc/fstab (use UUIDs, no network mounts), the initramfs and the GRUB default entry, then export again.',
  },
];

/** What the operator should do about a conversion task's failure message; undefined when unknown. */
export function conversionFailureHint(statusMessage: string): string | undefined {
  return CONVERSION_HINTS.find((h) => h.match.test(statusMessage))?.hint;
}

/** The VmError for a conversion task that ended `cancelled` (or is `cancelling`) with this message. */
export function conversionFailure(conversionTaskId: string, statusMessage: string): VmError {
  const entry = CONVERSION_HINTS.find((h) => h.match.test(statusMessage));
  const said = statusMessage.trim() ? `"${redact(statusMessage.trim())}"` : 'no status message';
  const what = `Conversion task ${conversionTaskId} was cancelled by EC2 (${said}).`;
  if (!entry)
    return {
      type: FailureType.ConversionFailed,
      message: `${what} Check the image against the VM Import prerequisites, then run the VM again.`,
    };
  return {
    type: entry.transient ? FailureType.ConversionInterrupted : FailureType.ConversionFailed,
    message: `${what} ${entry.hint}`,
  };
}
