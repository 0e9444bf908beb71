/**
 * What AWS's error codes mean to vmconvoy: the codes (and Node network codes) grouped by what can be done
 * about them, and small predicates over SDK errors. activities/aws-errors.ts turns them into failures.
 */

/** The shape of errors thrown by AWS SDK v3 clients (and of Node's network errors). */
export interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export const THROTTLING = new Set([
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

export const UNAVAILABLE = new Set([
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

export const NETWORK_CODES = new Set([
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
export const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

export const AUTH = new Set([
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

export const CREDENTIALS_EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired']);

export const INVALID_PARAMETER = new Set([
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

export function asAwsLike(err: unknown): AwsLikeError {
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
