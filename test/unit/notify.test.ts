/**
 * The notification POST against a real loopback server: the receiver named by the batch is resolved on the
 * worker, signature and headers, which answers are retried, and that no error names the URL's path.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { NotifyDeps } from '../../activities/notify';
import { notifySignature, sendNotification } from '../../activities/notify';
import { notifyReceiversOf } from '../../common/config';
import type { NotifyEvent } from '../../common/contracts/notify';

let status = 204;
const seen: Array<{ url: string | undefined; headers: IncomingHttpHeaders; body: string }> = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ url: req.url, headers: req.headers, body });
    res.writeHead(status).end('ignored');
  });
});
/** A webhook URL carries its token in the path, as Slack's and Teams' do. */
const TOKEN = 'T0KEN-b7f3c1d9e2a4';
let url: string;
let deps: NotifyDeps;
const to = { receiver: 'ops' } as const;
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/${TOKEN}`;
  deps = { secret: 's3cret', receivers: { ops: url } };
});
after(() => server.close());

const event: NotifyEvent = {
  type: 'vm.failed',
  id: 'b/notify/run/1',
  batch: 'b',
  time: '2025-01-01T00:00:00.000Z',
  vm: { name: 'web-01', errorType: 'ConversionFailed', message: 'ClientError: "ünsupported" <kernel>' },
};

test('the body is the event, signed with HMAC-SHA256 of its exact bytes under the secret', async () => {
  status = 204;
  assert.deepEqual(await sendNotification(deps, { ...to, event }), { status: 204 });
  const got = seen.at(-1)!;
  assert.equal(got.url, `/hook/${TOKEN}`, 'posted to the URL the worker has for the receiver');
  assert.deepEqual(JSON.parse(got.body), event);
  const expected = `sha256=${createHmac('sha256', 's3cret').update(Buffer.from(got.body, 'utf8')).digest('hex')}`;
  assert.equal(got.headers['x-vmconvoy-signature'], expected);
  assert.equal(notifySignature('s3cret', got.body), expected);
  assert.notEqual(notifySignature('other', got.body), expected);
  assert.equal(got.headers['x-vmconvoy-event'], 'vm.failed');
  assert.equal(got.headers['x-vmconvoy-delivery'], event.id);
  assert.ok(!got.body.includes('s3cret'));
});

async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e
  );
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

test('5xx, 429 and an unreachable receiver are retried; another 4xx and a missing secret are not', async () => {
  for (const [code, retryable] of [
    [503, true],
    [429, true],
    [408, true],
    [401, false],
    [404, false],
  ] as const) {
    status = code;
    const err = await failure(sendNotification(deps, { ...to, event }));
    assert.equal(err.nonRetryable, !retryable, `${code}`);
    assert.match(err.message, new RegExp(`receiver "ops" \\(http://127\\.0\\.0\\.1:\\d+\\) answered ${code}`));
    assert.ok(!err.message.includes(TOKEN), `the failure (kept in history) names no token: ${err.message}`);
  }
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  const unreachable = await failure(
    sendNotification({ ...deps, receivers: { ops: `http://127.0.0.1:${port}/${TOKEN}` } }, { ...to, event })
  );
  assert.equal(unreachable.nonRetryable, false);
  assert.ok(!unreachable.message.includes(TOKEN), unreachable.message);
  const before = seen.length;
  const noSecret = await failure(sendNotification({ ...deps, secret: undefined }, { ...to, event }));
  assert.equal(noSecret.type, 'NotifySecretMissing');
  assert.equal(noSecret.nonRetryable, true);
  assert.equal(seen.length, before, 'nothing unsigned is sent');
});

test('a receiver the worker does not have fails at once, naming the variable to set; nothing is sent', async () => {
  const before = seen.length;
  const unknown = await failure(sendNotification(deps, { receiver: 'pager', event }));
  assert.equal(unknown.type, 'NotifyReceiverUnknown');
  assert.equal(unknown.nonRetryable, true);
  assert.match(unknown.message, /VMCONVOY_NOTIFY_URL_PAGER/);
  const noDefault = await failure(sendNotification(deps, { receiver: 'default', event }));
  assert.match(noDefault.message, /set VMCONVOY_NOTIFY_URL to/);
  assert.equal(seen.length, before);
});

test('a batch started before receivers were named (its URL in its input) still gets its events', async () => {
  status = 204;
  assert.deepEqual(await sendNotification(deps, { url, event }), { status: 204 });
  assert.equal(seen.at(-1)!.url, `/hook/${TOKEN}`);
});

test('the workers read receivers from VMCONVOY_NOTIFY_URL and VMCONVOY_NOTIFY_URL_<NAME>', () => {
  assert.deepEqual(
    notifyReceiversOf({
      VMCONVOY_NOTIFY_URL: 'https://a.example/x',
      VMCONVOY_NOTIFY_URL_OPS_TEAM: 'https://b.example/y',
      VMCONVOY_NOTIFY_URL_EMPTY: '',
      VMCONVOY_NOTIFY_SECRET: 'not a receiver',
    }),
    { default: 'https://a.example/x', ops_team: 'https://b.example/y' }
  );
});
