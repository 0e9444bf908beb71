import { DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AwsClients } from '../../common/aws/clients';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import type { AwsConfig } from '../../common/config';
import { awsNetworkLimitsOf, loadConfig } from '../../common/config';
import { classifyAwsError } from '../../activities/aws-errors';
import { conversionFailure, conversionFailureHint } from '../../activities/conversion-failures';
import { progressFromMessage, toConversionProgress } from '../../activities/describe-conversion';
import { classifyFileError } from '../../activities/file-errors';
import { NotAnAwsResponseError } from '../../common/aws/ec2-answer-guard';
import { FailureType, isRetryableFailure, NON_RETRYABLE_FAILURE_TYPES } from '../../common/failures';
import { redact } from '../../common/redact';
import { NON_RETRYABLE_TYPES } from '../../workflows/activity-profiles';

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

  it('ResourceLimitExceeded is ConversionQuotaExceeded, which the workflow waits out itself (not an activity retry)', () => {
    const f = classifyAwsError(sdkError('ResourceLimitExceeded', 400, 'too many tasks'), {
      operation: 'ImportInstance',
    });
    assert.equal(f.type, 'ConversionQuotaExceeded');
    assert.equal(f.nonRetryable, true);
    assert.ok(NON_RETRYABLE_TYPES.includes('ConversionQuotaExceeded'));
    assert.equal(delaySeconds(f), undefined);
    assert.match(f.message, /too many tasks/);
  });

  it('every failure it makes is retryable exactly when common/failures.ts says so, and the workflows use that list', () => {
    const cases: Array<[unknown, string]> = [
      [sdkError('ResourceLimitExceeded', 400), FailureType.ConversionQuotaExceeded],
      [sdkError('RequestLimitExceeded', 503), FailureType.AwsThrottled],
      [sdkError('InternalError', 500), FailureType.AwsUnavailable],
      [sdkError('ExpiredToken', 400), FailureType.AwsCredentialsExpired],
      [sdkError('AuthFailure', 401), FailureType.AwsAuth],
      [sdkError('NoSuchBucket', 404), FailureType.S3BucketMissing],
      [sdkError('BadDigest', 400), FailureType.S3ChecksumMismatch],
      [sdkError('InvalidParameterValue', 400), FailureType.AwsInvalidParameter],
      [sdkError('SomethingElse', 409), FailureType.AwsRequestFailed],
      [new Error('local bug'), FailureType.Unexpected],
    ];
    for (const [err, type] of cases) {
      const f = classifyAwsError(err, { operation: 'x' });
      assert.equal(f.type, type);
      assert.equal(f.nonRetryable, !isRetryableFailure(type), type);
    }
    assert.deepEqual(NON_RETRYABLE_TYPES, NON_RETRYABLE_FAILURE_TYPES);
    for (const type of Object.values(FailureType))
      assert.equal(NON_RETRYABLE_TYPES.includes(type), !isRetryableFailure(type), type);
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

// ---------------------------------------------------------------------------------------------------
// Hostile answers: not an AWS response, never finished, cut off
// ---------------------------------------------------------------------------------------------------

/** What must never reach a failure message: the body of a hostile answer and a presigned URL's query. */
const BODY_SECRET = 'BODY-SECRET-4c1d';
const PRESIGNED = 'https://b.s3.amazonaws.com/vmconvoy/m.xml?X-Amz-Signature=deadbeef0123';

function assertClean(f: ApplicationFailure): void {
  assert.doesNotMatch(
    f.message,
    new RegExp(`${BODY_SECRET}|X-Amz-Signature|deadbeef|<html|<\\?xml|Deserialization error`)
  );
  assert.doesNotMatch(JSON.stringify(f.details), new RegExp(`${BODY_SECRET}|deadbeef`));
}

/** The raw response the SDK's deserializer hides on errors it could not parse (never shown). */
function withHiddenResponse<E extends Error>(err: E, status: number): E {
  Object.defineProperty(err, '$response', {
    value: { statusCode: status, headers: {}, body: `<x>${BODY_SECRET} ${PRESIGNED}</x>` },
    enumerable: false,
  });
  return Object.assign(err, { $metadata: { httpStatusCode: status, requestId: 'req-1' } });
}

describe('hostile answers are retryable AwsUnavailable that name the operation and nothing of the body', () => {
  const ctx = { operation: 'DescribeConversionTasks import-i-1', service: 'EC2' as const };
  const table: Array<[string, Error, RegExp]> = [
    [
      'malformed XML with status 200 (the SDK could not parse it)',
      withHiddenResponse(
        new Error(
          `@aws-sdk XML parse error: Closing tag '${BODY_SECRET}' is expected inplace of 'item'.\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`
        ),
        200
      ),
      /^DescribeConversionTasks import-i-1 failed: the EC2 endpoint answered something that is not an EC2 response \(a body that is not well-formed XML, HTTP 200\); retrying\./,
    ],
    [
      'an HTML page with status 200 (refused by the EC2 clients)',
      new NotAnAwsResponseError('EC2', 'Content-Type text/html instead of XML', 200),
      /the EC2 endpoint answered something that is not an EC2 response \(Content-Type text\/html instead of XML, HTTP 200\)/,
    ],
    [
      'an oversized body (refused by the EC2 clients)',
      new NotAnAwsResponseError('EC2', 'a body of 20972840 bytes, over the 16777216-byte limit', 200),
      /not an EC2 response \(a body of 20972840 bytes, over the 16777216-byte limit, HTTP 200\)/,
    ],
    [
      'no response headers within requestTimeout',
      Object.assign(
        new Error('@smithy/node-http-handler - [ERROR] a request has exceeded the configured 20000 ms requestTimeout.'),
        { name: 'TimeoutError', code: 'ETIMEDOUT' }
      ),
      /the EC2 endpoint did not answer in time \(a request has exceeded the configured 20000 ms requestTimeout\.\); retrying\./,
    ],
    [
      'a body that stopped coming (socket inactivity, after the deserializer saw it)',
      withHiddenResponse(
        Object.assign(
          new Error(
            '@smithy/node-http-handler - the request socket timed out after 20000 ms of inactivity (configured by client requestHandler).\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.'
          ),
          { name: 'TimeoutError' }
        ),
        200
      ),
      /did not answer in time \(the request socket timed out after 20000 ms of inactivity/,
    ],
    [
      'a reset connection (the SDK renames it TimeoutError)',
      Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' }),
      /the connection to the EC2 endpoint closed before a complete answer \(ECONNRESET: socket hang up\); retrying\./,
    ],
  ];
  for (const [label, err, message] of table) {
    it(label, () => {
      const f = classifyAwsError(err, ctx);
      assert.equal(f.type, 'AwsUnavailable');
      assert.equal(f.nonRetryable, false);
      assert.match(f.message, message);
      assertClean(f);
    });
  }

  it('says "AWS endpoint" when the caller does not name the service, and the refusal names its own', () => {
    const f = classifyAwsError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), { operation: 'x' });
    assert.match(f.message, /the connection to the AWS endpoint closed/);
    const refused = classifyAwsError(new NotAnAwsResponseError('EC2', 'Content-Type text/html instead of XML', 200), {
      operation: 'DescribeInstances i-1',
    });
    assert.match(refused.message, /the EC2 endpoint answered something that is not an EC2 response/);
  });

  it("AWS's own errors keep their classification though the deserializer also attaches $response", () => {
    const invalid = withHiddenResponse(sdkError('InvalidParameterValue', 400, 'Value (m9.huge) is invalid.'), 400);
    assert.equal(classifyAwsError(invalid, ctx).type, 'AwsInvalidParameter');
    const denied = withHiddenResponse(new Error('@aws-sdk XML parse error: x'), 403);
    assert.equal(classifyAwsError(denied, ctx).type, 'AwsAuth', 'an unreadable 403 is still an auth problem');
  });
});

describe('the default network limits', () => {
  it('let a fast activity fail by itself, classified, before its 2-minute start-to-close', () => {
    const limits = awsNetworkLimitsOf({});
    assert.deepEqual(limits, {
      connectTimeoutMs: 10_000,
      ec2TimeoutMs: 20_000,
      ec2MaxResponseBytes: 16 * 1024 * 1024,
      s3IdleTimeoutMs: 60_000,
    });
    // importInstance: the look-up with the SDK's 3 attempts, then ImportInstance once.
    const worstImport = (3 + 1) * limits.ec2TimeoutMs + 3 * 1_000; // + the SDK's backoff between attempts
    assert.ok(worstImport < 120_000, `${worstImport} ms`);
    const parsed = loadConfig({ AWS_REGION: 'us-east-1', VMCONVOY_BUCKET: 'stage' });
    assert.equal(parsed.aws.ec2TimeoutMs, 20_000, 'loadConfig applies the zod defaults');
    assert.equal(awsNetworkLimitsOf({ ec2TimeoutMs: 500 }).ec2TimeoutMs, 500);
  });
});

describe('hostile answers as the real EC2 and S3 clients see them (a local HTTP server)', () => {
  type Mode =
    | 'ok'
    | 'okChunked'
    | 'malformed'
    | 'html'
    | 'oversized'
    | 'oversizedChunked'
    | 'silent'
    | 'hang'
    | 'trickle'
    | 'reset';
  let mode: Mode = 'ok';
  let server: http.Server;
  let clients: AwsClients;
  const LIMIT_MS = 400;
  const xml = (inner = '') =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeConversionTasksResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId>${inner}<conversionTasks/></DescribeConversionTasksResponse>`;
  const timers = new Set<NodeJS.Timeout>();

  function answer(res: http.ServerResponse, req: http.IncomingMessage): void {
    const send = (type: string, body: string): void => {
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
    };
    switch (mode) {
      case 'ok':
        return send('text/xml;charset=UTF-8', xml());
      case 'okChunked':
        res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
        res.write(xml().slice(0, 40));
        return void res.end(xml().slice(40));
      case 'malformed':
        return send('text/xml;charset=UTF-8', `${xml(`<x>${BODY_SECRET} ${PRESIGNED}</x>`).slice(0, 150)}<<&&</`);
      case 'html':
        return send('text/html', `<html><body>${BODY_SECRET} Gateway maintenance</body></html>`);
      case 'oversized':
        return send('text/xml', xml(`<padding>${'x'.repeat(200 * 1024)}</padding>`));
      case 'oversizedChunked': {
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.write(xml().slice(0, 150));
        for (let i = 0; i < 20; i++) res.write(`<p>${'x'.repeat(16 * 1024)}</p>`);
        return void res.end(xml().slice(150));
      }
      case 'silent':
        return; // not even headers
      case 'hang':
        res.writeHead(200, { 'content-type': 'text/xml' });
        return void res.write('<?xml version="1.0" encoding="UTF-8"?>\n<');
      case 'trickle': {
        // A byte every 50 ms: never silent long enough for an inactivity timeout, never finished.
        res.writeHead(200, { 'content-type': 'text/xml' });
        const timer = setInterval(() => res.write(' '), 50);
        timers.add(timer);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case 'reset':
        return void req.socket.destroy();
    }
  }

  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res, req));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config: AwsConfig = {
      region: 'us-east-1',
      ec2Endpoint: endpoint,
      s3Endpoint: endpoint,
      bucket: 'stage',
      keyPrefix: 'vmconvoy/',
      accessKeyId: 'AKIDLOCAL',
      secretAccessKey: 'local-secret',
      maxAttempts: 1,
      connectTimeoutMs: LIMIT_MS,
      ec2TimeoutMs: LIMIT_MS,
      ec2MaxResponseBytes: 64 * 1024,
      s3IdleTimeoutMs: LIMIT_MS,
    };
    clients = createAwsClients(config);
  });
  after(() => {
    destroyAwsClients(clients);
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    server.close();
  });

  const describeTasks = () => clients.ec2.send(new DescribeConversionTasksCommand({}));

  async function failsWith(m: Mode, message: RegExp): Promise<number> {
    mode = m;
    const started = Date.now();
    const err = await describeTasks().then(
      () => assert.fail(`${m}: the call succeeded`),
      (e: unknown) => e
    );
    const ms = Date.now() - started;
    const f = classifyAwsError(err, { operation: 'DescribeConversionTasks', service: 'EC2' });
    assert.equal(f.type, 'AwsUnavailable', f.message);
    assert.equal(f.nonRetryable, false);
    assert.match(f.message, message);
    assertClean(f);
    // The client is still usable: no half-read connection goes back to the pool.
    mode = 'ok';
    assert.deepEqual((await describeTasks()).ConversionTasks, []);
    return ms;
  }

  it('real answers pass the guard, with or without Content-Length', { timeout: 10_000 }, async () => {
    mode = 'ok';
    assert.deepEqual((await describeTasks()).ConversionTasks, []);
    mode = 'okChunked';
    assert.deepEqual((await describeTasks()).ConversionTasks, []);
  });

  it(
    'malformed XML, an HTML page, an oversized body (sized or chunked) fail at once',
    { timeout: 10_000 },
    async () => {
      const notEc2 = /answered something that is not an EC2 response/;
      for (const [m, reason] of [
        ['malformed', /not well-formed XML/],
        ['html', /Content-Type text\/html instead of XML/],
        ['oversized', /a body of \d+ bytes, over the 65536-byte limit/],
        ['oversizedChunked', /a body of more than 65536 bytes/],
      ] as const) {
        const ms = await failsWith(m, notEc2);
        await failsWith(m, reason);
        assert.ok(ms < LIMIT_MS, `${m}: ${ms} ms`);
      }
    }
  );

  it(
    'no headers, a body that stops, a body that trickles: each ends at the EC2 timeout',
    { timeout: 10_000 },
    async () => {
      for (const m of ['silent', 'hang', 'trickle'] as const) {
        const ms = await failsWith(m, /the EC2 endpoint did not answer in time/);
        assert.ok(ms >= LIMIT_MS - 50 && ms < LIMIT_MS + 500, `${m}: ${ms} ms`);
      }
    }
  );

  it('a reset connection', { timeout: 10_000 }, async () => {
    await failsWith('reset', /closed before a complete answer \(ECONNRESET/);
  });

  it('S3 gives up on a silent connection after s3IdleTimeoutMs', { timeout: 10_000 }, async () => {
    mode = 'silent';
    const started = Date.now();
    const err = await clients.s3.send(new HeadObjectCommand({ Bucket: 'stage', Key: 'k' })).then(
      () => assert.fail('HEAD succeeded'),
      (e: unknown) => e
    );
    const ms = Date.now() - started;
    const f = classifyAwsError(err, { operation: 'HEAD k', service: 'S3' });
    assert.equal(f.type, 'AwsUnavailable');
    assert.match(f.message, /the S3 endpoint did not answer in time/);
    assert.ok(ms >= LIMIT_MS - 50 && ms < LIMIT_MS + 500, `${ms} ms`);
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
