/**
 * The simulator's protocol layer without a server: SigV4 verification (good, tampered, missing, wrong
 * key/region/body), request parsing (POST body, GET query), dispatch, the error envelope and XML escaping.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLParser } from 'fast-xml-parser';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { route } from '../../sim/protocol/dispatch';
import { renderError, statusFor } from '../../sim/protocol/errors';
import { QueryParams } from '../../sim/protocol/query';
import { parseRequest } from '../../sim/protocol/request';
import { verifySigV4 } from '../../sim/protocol/sigv4';
import { renderResponse } from '../../sim/protocol/xml';

const CREDS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim-secret', region: 'us-east-1' };

async function signed(body: string, opts: { secret?: string; region?: string; method?: string; query?: Record<string, string>; date?: Date } = {}) {
  const signer = new SignatureV4({
    service: 'ec2',
    region: opts.region ?? CREDS.region,
    credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: opts.secret ?? CREDS.secretAccessKey },
    sha256: Sha256,
  });
  const request = await signer.sign({
    method: opts.method ?? 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4566,
    path: '/',
    query: opts.query ?? {},
    headers: { host: '127.0.0.1:4566', 'content-type': 'application/x-www-form-urlencoded', 'x-amz-content-sha256': await hex(body) },
    body,
  }, { signingDate: opts.date });
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
  return { method: request.method, path: '/', query: opts.query ?? {}, headers, body: Buffer.from(body) };
}

async function hex(body: string): Promise<string> {
  const h = new Sha256();
  h.update(body);
  return Buffer.from(await h.digest()).toString('hex');
}

async function authError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('SigV4 verification', () => {
  const body = 'Action=DescribeConversionTasks&Version=2016-11-15';

  test('a correctly signed POST and GET are accepted', async () => {
    await verifySigV4(await signed(body), CREDS);
    await verifySigV4(await signed('', { method: 'GET', query: { Action: 'DescribeInstances', 'InstanceId.1': 'i-1' } }), CREDS);
  });

  test('a missing or malformed Authorization header is AuthFailure', async () => {
    const req = await signed(body);
    delete req.headers.authorization;
    assert.match(await authError(verifySigV4(req, CREDS)), /^AuthFailure: .*not signed/);
    const bad = await signed(body);
    bad.headers.authorization = 'AWS foo:bar';
    assert.match(await authError(verifySigV4(bad, CREDS)), /^AuthFailure: .*malformed/);
  });

  test('a tampered body, query, signed header or signature is AuthFailure', async () => {
    const tamperedBody = await signed(body);
    tamperedBody.body = Buffer.from(body.replace('Describe', 'Cancel'));
    assert.match(await authError(verifySigV4(tamperedBody, CREDS)), /^AuthFailure/);
    // Same body, but the content hash header is recomputed too: only the signature can tell.
    const rehashed = await signed(body);
    rehashed.body = Buffer.from(`${body}&DryRun=true`);
    rehashed.headers['x-amz-content-sha256'] = await hex(`${body}&DryRun=true`);
    assert.match(await authError(verifySigV4(rehashed, CREDS)), /^AuthFailure: .*signature mismatch/);
    const query = await signed('', { method: 'GET', query: { Action: 'DescribeInstances' } });
    query.query = { Action: 'TerminateInstances' };
    assert.match(await authError(verifySigV4(query, CREDS)), /^AuthFailure/);
    const header = await signed(body);
    header.headers['content-type'] = 'text/plain';
    assert.match(await authError(verifySigV4(header, CREDS)), /^AuthFailure/);
    const sig = await signed(body);
    sig.headers.authorization = String(sig.headers.authorization).replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === 'a' ? 'b' : 'a'}`);
    assert.match(await authError(verifySigV4(sig, CREDS)), /^AuthFailure: .*signature mismatch/);
  });

  test('a wrong secret, access key or region is AuthFailure', async () => {
    assert.match(await authError(verifySigV4(await signed(body, { secret: 'nope' }), CREDS)), /^AuthFailure/);
    assert.match(await authError(verifySigV4(await signed(body), { ...CREDS, accessKeyId: 'OTHER' })), /^AuthFailure/);
    assert.match(await authError(verifySigV4(await signed(body, { region: 'eu-west-1' }), CREDS)), /^AuthFailure: Credential should be scoped/);
  });

  test('a signature more than 15 minutes off the clock is RequestExpired (400), one within is accepted', async () => {
    const old = await signed(body, { date: new Date(Date.now() - 16 * 60 * 1000) });
    assert.match(await authError(verifySigV4(old, CREDS)), /^RequestExpired: Request has expired/);
    assert.equal(statusFor('RequestExpired'), 400);
    await verifySigV4(await signed(body, { date: new Date(Date.now() - 14 * 60 * 1000) }), CREDS);
  });
});

describe('request parsing and dispatch', () => {
  const message = (method: string, url: string): IncomingMessage => ({ method, url, headers: {} }) as IncomingMessage;

  test('a POST takes its parameters from the form body, a GET from the query string', () => {
    const post = parseRequest(message('POST', '/'), Buffer.from('Action=ImportInstance&Version=2016-11-15&DiskImage.1.Image.ImportManifestUrl=http%3A%2F%2Fs3%2Fk%3Fa%3D1%26b%3D2'));
    assert.equal(post.params.get('Action'), 'ImportInstance');
    assert.equal(post.params.get('DiskImage.1.Image.ImportManifestUrl'), 'http://s3/k?a=1&b=2');
    const get = parseRequest(message('GET', '/?Action=DescribeInstances&InstanceId.1=i-1&InstanceId.2=i-2'), Buffer.alloc(0));
    assert.deepEqual([get.params.get('Action'), get.params.list('InstanceId'), get.query.Action], ['DescribeInstances', ['i-1', 'i-2'], 'DescribeInstances']);
  });

  test('lists are 1-based and ordered by index, gaps allowed; filters gather their values', () => {
    const p = QueryParams.parse('ConversionTaskId.10=c&ConversionTaskId.2=b&ConversionTaskId.1=a&Filter.2.Name=instance-state-name&Filter.2.Value.1=stopped&Filter.1.Name=tag%3AName&Filter.1.Value.2=db&Filter.1.Value.1=web');
    assert.deepEqual(p.list('ConversionTaskId'), ['a', 'b', 'c']);
    assert.deepEqual([...p.filters()], [['tag:Name', ['web', 'db']], ['instance-state-name', ['stopped']]]);
    assert.throws(() => QueryParams.parse('DryRun=yes').bool('DryRun'), { code: 'InvalidParameterValue' });
    assert.throws(() => QueryParams.parse('Volume.Size=8GB').int('Volume.Size'), { code: 'InvalidParameterValue' });
    assert.throws(() => QueryParams.parse('Platform=').require('Platform'), { code: 'MissingParameter' });
  });

  test('unknown actions and versions are refused; both supported versions route', () => {
    assert.throws(() => route(QueryParams.parse('Action=LaunchRockets')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('Action=toString')), { code: 'InvalidAction' });
    assert.throws(() => route(QueryParams.parse('Action=ImportInstance&Version=2009-01-01')), { code: 'InvalidParameterValue' });
    assert.equal(route(QueryParams.parse('Action=ImportInstance&Version=2013-02-01')).action, 'ImportInstance');
    assert.equal(route(QueryParams.parse('Action=DescribeConversionTasks&Version=2016-11-15')).action, 'DescribeConversionTasks');
  });
});

describe('XML', () => {
  const parser = new XMLParser({ parseTagValue: false, ignoreAttributes: false });

  test('responses carry the namespace and requestId and escape & in URLs', () => {
    const url = 'http://s3/b/m.xml?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab<c';
    const xml = renderResponse('ImportInstance', 'req-1', { conversionTask: { importManifestUrl: url, tagSet: '' } });
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<ImportInstanceResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>req-1<\/requestId>/);
    assert.ok(xml.includes('AWS4-HMAC-SHA256&amp;X-Amz-Signature=ab&lt;c'));
    assert.equal(parser.parse(xml).ImportInstanceResponse.conversionTask.importManifestUrl, url);
  });

  test('errors use the EC2 envelope and EC2 status codes', () => {
    assert.equal(
      renderError('InvalidParameterValue', 'a & b', 'req-2'),
      '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>a &amp; b</Message></Error></Errors><RequestID>req-2</RequestID></Response>'
    );
    const statuses = Object.fromEntries(
      ['MissingParameter', 'AuthFailure', 'UnauthorizedOperation', 'DryRunOperation', 'InternalError', 'RequestLimitExceeded', 'Unavailable', 'ResourceLimitExceeded'].map((c) => [c, statusFor(c)])
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
