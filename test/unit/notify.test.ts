/** The notification POST against a real loopback server: signature, headers, and which answers are retried. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { notifySignature, sendNotification } from '../../activities/notify';
import type { NotifyEvent } from '../../common/contracts/notify';

let status = 204;
const seen: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ headers: req.headers, body });
    res.writeHead(status).end('ignored');
  });
});
let url: string;
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
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
  assert.deepEqual(await sendNotification('s3cret', { url, event }), { status: 204 });
  const got = seen.at(-1)!;
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
    const err = await failure(sendNotification('s3cret', { url, event }));
    assert.equal(err.nonRetryable, !retryable, `${code}`);
    assert.match(err.message, new RegExp(`answered ${code}`));
  }
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  const unreachable = await failure(sendNotification('s3cret', { url: `http://127.0.0.1:${port}/`, event }));
  assert.equal(unreachable.nonRetryable, false);
  const before = seen.length;
  const noSecret = await failure(sendNotification(undefined, { url, event }));
  assert.equal(noSecret.type, 'NotifySecretMissing');
  assert.equal(noSecret.nonRetryable, true);
  assert.equal(seen.length, before, 'nothing unsigned is sent');
});
