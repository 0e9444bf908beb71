/**
 * The simulator's protocol layer without a server: SigV4 verification (good, tampered, missing, wrong
 * key/region/body), request parsing (POST body, GET query), dispatch, the error envelope and XML escaping.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLParser } from 'fast-xml-parser';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { before, describe, test } from 'node:test';
import { route } from '../../sim/protocol/dispatch';
import { renderError, statusFor } from '../../sim/protocol/errors';
import { QueryParams } from '../../sim/protocol/query';
import { parseRequest } from '../../sim/protocol/request';
import type { SignedRequest } from '../../sim/protocol/sigv4';
import { verifySigV4 } from '../../sim/protocol/sigv4';
import { renderResponse } from '../../sim/protocol/xml';

const CREDS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret', region: 'us-east-1' };

/** RFC 3986 encoding of a query value, as SDKs put it on the wire. */
const enc = (v: string): string =>
  encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

interface SignOptions {
  secret?: string;
  region?: string;
  method?: string;
  query?: Record<string, string>;
  date?: Date;
  /** false: sign as botocore does, without an x-amz-content-sha256 header. */
  applyChecksum?: boolean;
}

function signer(opts: SignOptions): SignatureV4 {
  return new SignatureV4({
    service: 'ec2',
    region: opts.region ?? CREDS.region,
    credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: opts.secret ?? CREDS.secretAccessKey },
    sha256: Sha256,
    applyChecksum: opts.applyChecksum ?? true,
  });
}

function toWire(
  request: { method: string; query?: Record<string, string | string[] | null>; headers: Record<string, string> },
  body: string
): SignedRequest {
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
  const rawQuery = Object.entries(request.query ?? {})
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`)
    .join('&');
  return { method: request.method, path: '/', rawQuery, headers, body: Buffer.from(body) };
}

async function signed(body: string, opts: SignOptions = {}): Promise<SignedRequest> {
  const headers: Record<string, string> = { host: '127.0.0.1:4566' };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded; charset=utf-8';
  const request = await signer(opts).sign(
    {
      method: opts.method ?? 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4566,
      path: '/',
      query: opts.query ?? {},
      headers,
      body,
    },
    { signingDate: opts.date }
  );
  return toWire(request, body);
}

async function presigned(
  query: Record<string, string>,
  opts: SignOptions & { expiresIn?: number } = {}
): Promise<SignedRequest> {
  const request = await signer(opts).presign(
    {
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4566,
      path: '/',
      query,
      headers: { host: '127.0.0.1:4566' },
    },
    { signingDate: opts.date, expiresIn: opts.expiresIn ?? 300 }
  );
  return toWire(request, '');
}

function authError(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('SigV4 verification', () => {
  const body = 'Action=DescribeConversionTasks&Version=2016-11-15';

  test('a correctly signed POST and GET are accepted, with or without a signed x-amz-content-sha256', async () => {
    const js = await signed(body);
    assert.match(String(js.headers.authorization), /SignedHeaders=[^,]*x-amz-content-sha256/);
    verifySigV4(js, CREDS);
    const botocoreStyle = await signed(body, { applyChecksum: false });
    assert.match(String(botocoreStyle.headers.authorization), /SignedHeaders=content-type;host;x-amz-date,/);
    verifySigV4(botocoreStyle, CREDS);
    verifySigV4(
      await signed('', {
        method: 'GET',
        query: { Action: 'DescribeInstances', 'InstanceId.1': 'i-1', Filter: 'a b+c/é' },
      }),
      CREDS
    );
  });

  test('only the headers in SignedHeaders count: others may change, a signed one may not', async () => {
    const req = await signed(body, { applyChecksum: false });
    req.headers['user-agent'] = 'changed in transit';
    req.headers['x-amz-content-sha256'] = 'not signed, so not checked';
    verifySigV4(req, CREDS);
    const missing = await signed(body, { applyChecksum: false });
    delete missing.headers['content-type'];
    assert.match(
      authError(() => verifySigV4(missing, CREDS)),
      /^AuthFailure: .*signed header content-type is missing/
    );
  });

  test('query-string (presigned) auth is accepted until X-Amz-Expires, then RequestExpired', async () => {
    verifySigV4(await presigned({ Action: 'DescribeInstances', Version: '2016-11-15' }), CREDS);
    const old = await presigned(
      { Action: 'DescribeInstances', Version: '2016-11-15' },
      { date: new Date(Date.now() - 120_000), expiresIn: 60 }
    );
    assert.match(old.rawQuery, /X-Amz-Expires=60/);
    assert.match(
      authError(() => verifySigV4(old, CREDS)),
      /^RequestExpired: Request has expired/
    );
    const tampered = await presigned({ Action: 'DescribeInstances', Version: '2016-11-15' });
    tampered.rawQuery = tampered.rawQuery.replace('DescribeInstances', 'TerminateInstances');
    assert.match(
      authError(() => verifySigV4(tampered, CREDS)),
      /^AuthFailure: .*signature mismatch/
    );
  });

  test('a missing or malformed Authorization header is AuthFailure', async () => {
    const req = await signed(body);
    delete req.headers.authorization;
    assert.match(
      authError(() => verifySigV4(req, CREDS)),
      /^AuthFailure: .*not signed/
    );
    const bad = await signed(body);
    bad.headers.authorization = 'AWS foo:bar';
    assert.match(
      authError(() => verifySigV4(bad, CREDS)),
      /^AuthFailure: .*malformed/
    );
  });

  test('a tampered body, query, signed header or signature is AuthFailure', async () => {
    const tamperedBody = await signed(body, { applyChecksum: false });
    tamperedBody.body = Buffer.from(body.replace('Describe', 'Cancel'));
    assert.match(
      authError(() => verifySigV4(tamperedBody, CREDS)),
      /^AuthFailure: .*signature mismatch/
    );
    // The signed content hash no longer matches the body.
    const rehashed = await signed(body);
    rehashed.body = Buffer.from(`${body}&DryRun=true`);
    assert.match(
      authError(() => verifySigV4(rehashed, CREDS)),
      /^AuthFailure: .*does not match x-amz-content-sha256/
    );
    const query = await signed('', { method: 'GET', query: { Action: 'DescribeInstances' } });
    query.rawQuery = 'Action=TerminateInstances';
    assert.match(
      authError(() => verifySigV4(query, CREDS)),
      /^AuthFailure: .*signature mismatch/
    );
    const header = await signed(body);
    header.headers['content-type'] = 'text/plain';
    assert.match(
      authError(() => verifySigV4(header, CREDS)),
      /^AuthFailure: .*signature mismatch/
    );
    const sig = await signed(body);
    sig.headers.authorization = String(sig.headers.authorization).replace(
      /Signature=(.)/,
      (_m, c: string) => `Signature=${c === 'a' ? 'b' : 'a'}`
    );
    assert.match(
      authError(() => verifySigV4(sig, CREDS)),
      /^AuthFailure: .*signature mismatch/
    );
  });

  test('a wrong secret, access key or region is AuthFailure', () => {
    assert.match(
      authError(() => verifySigV4(signedSync.wrongSecret!, CREDS)),
      /^AuthFailure/
    );
    assert.match(
      authError(() => verifySigV4(signedSync.good!, { ...CREDS, accessKeyId: 'OTHER' })),
      /^AuthFailure/
    );
    assert.match(
      authError(() => verifySigV4(signedSync.otherRegion!, CREDS)),
      /^AuthFailure: Credential should be scoped/
    );
  });

  test('a date more than 15 minutes off the clock, either way, is RequestExpired (400); within is accepted', async () => {
    const old = await signed(body, { date: new Date(Date.now() - 16 * 60 * 1000) });
    assert.match(
      authError(() => verifySigV4(old, CREDS)),
      /^RequestExpired: Request has expired/
    );
    const future = await signed(body, { date: new Date(Date.now() + 16 * 60 * 1000) });
    assert.match(
      authError(() => verifySigV4(future, CREDS)),
      /^RequestExpired: Request has expired/
    );
    assert.equal(statusFor('RequestExpired'), 400);
    verifySigV4(await signed(body, { date: new Date(Date.now() - 14 * 60 * 1000) }), CREDS);
    verifySigV4(await signed(body, { date: new Date(Date.now() + 14 * 60 * 1000) }), CREDS);
  });

  const signedSync: Partial<Record<'good' | 'wrongSecret' | 'otherRegion', SignedRequest>> = {};
  before(async () => {
    signedSync.good = await signed(body);
    signedSync.wrongSecret = await signed(body, { secret: 'nope' });
    signedSync.otherRegion = await signed(body, { region: 'eu-west-1' });
  });
});

describe('request parsing and dispatch', () => {
  const message = (method: string, url: string): IncomingMessage =>
    ({ method, url, headers: {}, rawHeaders: [] }) as unknown as IncomingMessage;

  test('a POST takes its parameters from the form body, a GET from the query string', () => {
    const post = parseRequest(
      message('POST', '/'),
      Buffer.from(
        'Action=ImportInstance&Version=2016-11-15&DiskImage.1.Image.ImportManifestUrl=http%3A%2F%2Fs3%2Fk%3Fa%3D1%26b%3D2'
      )
    );
    assert.equal(post.params.get('Action'), 'ImportInstance');
    assert.equal(post.params.get('DiskImage.1.Image.ImportManifestUrl'), 'http://s3/k?a=1&b=2');
    const get = parseRequest(
      message('GET', '/?Action=DescribeInstances&InstanceId.1=i-1&InstanceId.2=i-2'),
      Buffer.alloc(0)
    );
    assert.deepEqual(
      [get.params.get('Action'), get.params.list('InstanceId'), get.rawQuery],
      ['DescribeInstances', ['i-1', 'i-2'], 'Action=DescribeInstances&InstanceId.1=i-1&InstanceId.2=i-2']
    );
  });

  test('lists are 1-based and ordered by index, gaps allowed; filters gather their values', () => {
    const p = QueryParams.parse(
      'ConversionTaskId.10=c&ConversionTaskId.2=b&ConversionTaskId.1=a&Filter.2.Name=instance-state-name&Filter.2.Value.1=stopped&Filter.1.Name=tag%3AName&Filter.1.Value.2=db&Filter.1.Value.1=web'
    );
    assert.deepEqual(p.list('ConversionTaskId'), ['a', 'b', 'c']);
    assert.deepEqual(
      [...p.filters()],
      [
        ['tag:Name', ['web', 'db']],
        ['instance-state-name', ['stopped']],
      ]
    );
    assert.throws(() => QueryParams.parse('DryRun=yes').bool('DryRun'), { code: 'InvalidParameterValue' });
    assert.throws(() => QueryParams.parse('Volume.Size=8GB').int('Volume.Size'), { code: 'InvalidParameterValue' });
    assert.throws(() => QueryParams.parse('Platform=').require('Platform'), { code: 'MissingParameter' });
  });

  test('unknown actions are InvalidAction; Version is required and must be one EC2 has', () => {
    assert.throws(() => route(QueryParams.parse('Action=LaunchRockets&Version=2016-11-15')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('Action=toString&Version=2016-11-15')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('Action=DescribeConversionTasks')), {
      code: 'MissingParameter',
      message: 'The request must contain the parameter Version',
    });
    assert.throws(() => route(QueryParams.parse('Action=ImportInstance&Version=2009-01-01')), {
      code: 'NoSuchVersion',
      message: 'The requested version (2009-01-01) of service AmazonEC2 does not exist',
    });
    // A dated version from before VM Import existed: the action is not in it.
    assert.throws(() => route(QueryParams.parse('Action=DescribeConversionTasks&Version=2010-08-31')), {
      code: 'InvalidAction',
    });
    for (const version of ['2010-11-15', '2013-02-01', '2014-10-01', '2016-09-15', '2016-11-15']) {
      assert.equal(route(QueryParams.parse(`Action=DescribeConversionTasks&Version=${version}`)).version, version);
    }
  });

  test('a parameter the action does not take is UnknownParameter; a required one missing is MissingParameter', () => {
    const importBase = 'Action=ImportInstance&Version=2016-11-15&Platform=Windows';
    assert.throws(() => route(QueryParams.parse(`${importBase}&LaunchSpecification.InstanceTyp=c5.large`)), {
      code: 'UnknownParameter',
      message: 'The parameter LaunchSpecification.InstanceTyp is not recognized',
    });
    assert.throws(
      () =>
        route(
          QueryParams.parse(
            'Action=DescribeConversionTasks&Version=2016-11-15&Filter.1.Name=state&Filter.1.Value.1=active'
          )
        ),
      {
        code: 'UnknownParameter',
        message: 'The parameter Filter.1.Name is not recognized',
      }
    );
    assert.throws(() => route(QueryParams.parse(`${importBase}&DiskImage.x.Image.Format=RAW`)), {
      code: 'UnknownParameter',
    });
    assert.throws(
      () => route(QueryParams.parse(`${importBase}&DiskImage.1.Image.Format=RAW&DiskImage.1.Image.Bytes=5`)),
      {
        code: 'MissingParameter',
        message: 'The request must contain the parameter DiskImage.1.Image.ImportManifestUrl',
      }
    );
    assert.throws(() => route(QueryParams.parse('Action=ImportInstance&Version=2016-11-15')), {
      code: 'MissingParameter',
      message: /Platform/,
    });
    assert.throws(() => route(QueryParams.parse('Action=TerminateInstances&Version=2016-11-15')), {
      code: 'MissingParameter',
      message: /InstanceId/,
    });
    assert.throws(() => route(QueryParams.parse(`${importBase}&DryRun=yes`)), { code: 'InvalidParameterValue' });
    // Both spellings of the launch specification's user data and monitoring (2013-02-01 and 2016-11-15).
    for (const extra of [
      'LaunchSpecification.UserData=eA==',
      'LaunchSpecification.UserData.Data=eA==',
      'LaunchSpecification.Monitoring=true',
      'LaunchSpecification.Monitoring.Enabled=true',
    ]) {
      assert.equal(route(QueryParams.parse(`${importBase}&${extra}`)).action, 'ImportInstance');
    }
    // Query-string auth parameters belong to every action.
    assert.equal(
      route(
        QueryParams.parse(
          'Action=DescribeInstances&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00'
        )
      ).action,
      'DescribeInstances'
    );
  });
});

describe('XML', () => {
  const parser = new XMLParser({ parseTagValue: false, ignoreAttributes: false });

  test('responses carry the namespace and requestId and escape & in URLs', () => {
    const url = 'http://s3/b/m.xml?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab<c';
    const xml = renderResponse('ImportInstance', 'req-1', { conversionTask: { importManifestUrl: url, tagSet: '' } });
    assert.match(
      xml,
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<ImportInstanceResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>req-1<\/requestId>/
    );
    assert.ok(xml.includes('AWS4-HMAC-SHA256&amp;X-Amz-Signature=ab&lt;c'));
    assert.equal(parser.parse(xml).ImportInstanceResponse.conversionTask.importManifestUrl, url);
  });

  test('errors use the EC2 envelope and EC2 status codes', () => {
    assert.equal(
      renderError('InvalidParameterValue', 'a & b', 'req-2'),
      '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>a &amp; b</Message></Error></Errors><RequestID>req-2</RequestID></Response>'
    );
    const statuses = Object.fromEntries(
      [
        'MissingParameter',
        'AuthFailure',
        'UnauthorizedOperation',
        'DryRunOperation',
        'InternalError',
        'RequestLimitExceeded',
        'Unavailable',
        'ResourceLimitExceeded',
      ].map((c) => [c, statusFor(c)])
    );
    assert.deepEqual(statuses, {
      MissingParameter: 400,
      AuthFailure: 401,
      UnauthorizedOperation: 403,
      DryRunOperation: 412,
      InternalError: 500,
      RequestLimitExceeded: 503,
      Unavailable: 503,
      ResourceLimitExceeded: 400,
    });
  });
});
