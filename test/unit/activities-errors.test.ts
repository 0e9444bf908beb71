import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyAwsError,
  classifyFileError,
  conversionFailure,
  conversionFailureHint,
  redact,
} from '../../activities/errors';
import { progressFromMessage, toConversionProgress } from '../../activities/ec2-import';

/** An error shaped like the ones AWS SDK v3 throws. */
function sdkError(name: string, status: number, message = `${name} happened`): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'req-1', attempts: 1 },
  });
}

function nodeError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

function delaySeconds(f: ApplicationFailure): number | undefined {
  const d = f.nextRetryDelay;
  if (d === undefined || d === null) return undefined;
  if (typeof d === 'string') return Number(/^(\d+)/.exec(d)?.[1]);
  return Number(d) / 1000;
}

describe('AWS error classification', () => {
  const table: Array<[string, Error, string, boolean]> = [
    [
      'RequestLimitExceeded / 503',
      sdkError('RequestLimitExceeded', 503, 'Request limit exceeded.'),
      'AwsThrottled',
      false,
    ],
    ['Throttling / 400', sdkError('Throttling', 400), 'AwsThrottled', false],
    ['SlowDown / 503 (S3)', sdkError('SlowDown', 503), 'AwsThrottled', false],
    ['any 429', sdkError('Whatever', 429), 'AwsThrottled', false],
    ['InternalError / 500', sdkError('InternalError', 500), 'AwsUnavailable', false],
    ['Unavailable / 503', sdkError('Unavailable', 503), 'AwsUnavailable', false],
    ['unparseable 502', sdkError('Unknown', 502, 'Unknown'), 'AwsUnavailable', false],
    ['InsufficientCapacity / 500', sdkError('InsufficientCapacity', 500), 'AwsUnavailable', false],
    ['ECONNRESET', nodeError('ECONNRESET'), 'AwsUnavailable', false],
    ['ETIMEDOUT', nodeError('ETIMEDOUT'), 'AwsUnavailable', false],
    ['TimeoutError', Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'AwsUnavailable', false],
    [
      'InvalidParameterValue',
      sdkError('InvalidParameterValue', 400, 'Value (m9.huge) for parameter instanceType is invalid.'),
      'AwsInvalidParameter',
      true,
    ],
    ['MissingParameter', sdkError('MissingParameter', 400), 'AwsInvalidParameter', true],
    ['InvalidParameterCombination', sdkError('InvalidParameterCombination', 400), 'AwsInvalidParameter', true],
    ['UnknownParameter', sdkError('UnknownParameter', 400), 'AwsInvalidParameter', true],
    ['InvalidFormat', sdkError('InvalidFormat', 400), 'AwsInvalidParameter', true],
    ['DiskImageSizeTooLarge', sdkError('DiskImageSizeTooLarge', 400), 'AwsInvalidParameter', true],
    ['InvalidSubnetID.NotFound', sdkError('InvalidSubnetID.NotFound', 400), 'AwsInvalidParameter', true],
    ['AuthFailure / 401', sdkError('AuthFailure', 401), 'AwsAuth', true],
    ['UnauthorizedOperation / 403', sdkError('UnauthorizedOperation', 403), 'AwsAuth', true],
    ['SignatureDoesNotMatch', sdkError('SignatureDoesNotMatch', 403), 'AwsAuth', true],
    ['InvalidClientTokenId', sdkError('InvalidClientTokenId', 403), 'AwsAuth', true],
    ['AccessDenied (S3)', sdkError('AccessDenied', 403), 'AwsAuth', true],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), 'S3BucketMissing', true],
    ['BadDigest (S3)', sdkError('BadDigest', 400), 'S3ChecksumMismatch', false],
    ['ExpiredToken', sdkError('ExpiredToken', 400), 'AwsCredentialsExpired', false],
    ['unknown client error', sdkError('SomethingOdd', 400), 'AwsRequestFailed', true],
  ];
  for (const [label, err, type, nonRetryable] of table) {
    it(`${label} → ${type}${nonRetryable ? ' (final)' : ' (retried)'}`, () => {
      const f = classifyAwsError(err, { operation: 'ImportInstance', bucket: 'stage' });
      assert.ok(f instanceof ApplicationFailure);
      assert.equal(f.type, type);
      assert.equal(f.nonRetryable, nonRetryable);
      assert.match(f.message, /^ImportInstance failed: /);
    });
  }

  it('throttling waits with nextRetryDelay that grows with the attempt', () => {
    const first = delaySeconds(
      classifyAwsError(sdkError('RequestLimitExceeded', 503), { operation: 'x', attempt: 1 })
    )!;
    const fourth = delaySeconds(
      classifyAwsError(sdkError('RequestLimitExceeded', 503), { operation: 'x', attempt: 4 })
    )!;
    assert.ok(first >= 5 && first <= 7, `first ${first}`);
    assert.ok(fourth >= 40 && fourth <= 50, `fourth ${fourth}`);
  });

  it('ResourceLimitExceeded is a retryable ConversionQuotaExceeded after quotaRetrySeconds', () => {
    const f = classifyAwsError(sdkError('ResourceLimitExceeded', 400, 'too many tasks'), {
      operation: 'ImportInstance',
      quotaRetrySeconds: 90,
    });
    assert.equal(f.type, 'ConversionQuotaExceeded');
    assert.equal(f.nonRetryable, false);
    assert.equal(delaySeconds(f), 90);
    assert.match(f.message, /too many tasks/);
  });

  it("keeps AWS's message for invalid parameters and tells the operator where to fix it", () => {
    const f = classifyAwsError(
      sdkError('InvalidParameterValue', 400, 'Value (m9.huge) for parameter instanceType is invalid.'),
      { operation: 'ImportInstance' }
    );
    assert.match(f.message, /Value \(m9\.huge\) for parameter instanceType is invalid\./);
    assert.match(f.message, /inventory/);
  });

  it('points auth failures at the credentials and the IAM policy in the README', () => {
    const f = classifyAwsError(
      sdkError('UnauthorizedOperation', 403, 'You are not authorized to perform this operation.'),
      { operation: 'ImportInstance' }
    );
    assert.match(f.message, /credentials/);
    assert.match(f.message, /IAM policy/);
    assert.match(f.message, /README/);
  });

  it('names the missing bucket', () => {
    assert.match(
      classifyAwsError(sdkError('NoSuchBucket', 404), { operation: 'upload', bucket: 'my-stage' }).message,
      /"my-stage"/
    );
  });

  it('never lets a presigned query string or an access key into the message', () => {
    const err = sdkError(
      'InvalidParameterValue',
      400,
      'Could not read https://b.s3.amazonaws.com/p/manifest.xml?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F20260101&X-Amz-Signature=deadbeef for AKIAABCDEFGHIJKLMNOP'
    );
    const f = classifyAwsError(err, { operation: 'ImportInstance' });
    assert.doesNotMatch(f.message, /X-Amz-Signature=deadbeef|X-Amz-Credential=AKIA|AKIAABCDEFGHIJKLMNOP|deadbeef/);
    assert.match(f.message, /https:\/\/b\.s3\.amazonaws\.com\/p\/manifest\.xml\?<query removed>/);
    assert.doesNotMatch(JSON.stringify(f.details), /deadbeef/);
    assert.equal(redact('a Signature=abc&x=1'), 'a Signature=<removed>&x=1');
  });

  it('passes ApplicationFailures through unchanged', () => {
    const original = ApplicationFailure.nonRetryable('already classified', 'ImageNotFound');
    assert.equal(classifyAwsError(original, { operation: 'x' }), original);
  });

  it('turns file errors into ImageNotFound / ImageUnreadable', () => {
    assert.equal(classifyFileError(Object.assign(new Error('x'), { code: 'ENOENT' }), '/i.vmdk').type, 'ImageNotFound');
    const denied = classifyFileError(Object.assign(new Error('x'), { code: 'EACCES' }), '/i.vmdk');
    assert.equal(denied.type, 'ImageUnreadable');
    assert.match(denied.message, /permission denied/);
  });
});

describe('conversion failure messages', () => {
  const table: Array<[string, RegExp, string]> = [
    ['Client.Unsupported: No bootable partition found', /MBR/, 'ConversionFailed'],
    ['ClientError: Footers not identical', /qemu-img convert -f vpc -O vpc -o subformat=fixed/, 'ConversionFailed'],
    [
      'ClientError: Disk validation failed [Unsupported VMDK File Format]',
      /qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized/,
      'ConversionFailed',
    ],
    ['ClientError: Unsupported kernel version 4.15.0-1021-aws', /kernel/, 'ConversionFailed'],
    ['Linux is not supported on the requested instance', /instanceType/, 'ConversionFailed'],
    ['SERVER_ERROR : conversion : AWS initiated task cancellation', /Run the VM again/, 'ConversionInterrupted'],
    ['Task expired and automatically canceled', /expired/, 'ConversionInterrupted'],
  ];
  for (const [message, hint, type] of table) {
    it(`"${message}" → ${type} with a hint`, () => {
      assert.match(conversionFailureHint(message) ?? '', hint);
      const failure = conversionFailure('import-i-abc12345', message);
      assert.equal(failure.type, type);
      assert.ok(failure.message.includes(message), 'shows AWS message');
      assert.match(failure.message, /import-i-abc12345/);
    });
  }
  it('shows an unknown message as it is', () => {
    assert.equal(conversionFailureHint('Something new went wrong'), undefined);
    const failure = conversionFailure('import-i-1', 'Something new went wrong');
    assert.equal(failure.type, 'ConversionFailed');
    assert.match(failure.message, /"Something new went wrong"/);
  });

  it('reads progress from bytesConverted or the Progress message, and failures from cancelled tasks', () => {
    assert.equal(progressFromMessage('Progress: 42%'), 42);
    assert.equal(progressFromMessage(''), undefined);
    const task = (state: string, bytesConverted: number, msg = '') => ({
      ConversionTaskId: 'import-i-1',
      State: state as 'active',
      StatusMessage: msg,
      ImportInstance: {
        InstanceId: 'i-1',
        Volumes: [{ BytesConverted: bytesConverted, Volume: { Id: 'vol-1', Size: 8 } }],
      },
    });
    assert.equal(toConversionProgress(task('active', 500, ''), 1000).percent, 50);
    assert.equal(toConversionProgress(task('active', 0, 'Progress: 70%'), 1000).percent, 70);
    assert.equal(toConversionProgress(task('active', 1000, ''), 1000).percent, 99, 'not 100 until completed');
    const done = toConversionProgress(task('completed', 990, ''), 1000);
    assert.equal(done.percent, 100);
    assert.equal(done.volumeId, 'vol-1');
    assert.equal(done.failure, undefined);
    const cancelled = toConversionProgress(task('cancelled', 10, 'ClientError: Footers not identical'), 1000);
    assert.equal(cancelled.failure?.type, 'ConversionFailed');
    assert.match(cancelled.failure?.message ?? '', /Footers not identical/);
  });
});
