import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findSecrets, historyText } from '../helpers/secret-scan';

test('the secret scanner finds presigned URLs and given secrets inside payload bytes, plain or base64', () => {
  const payload = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
  const clean = historyText({
    events: [{ input: { payloads: [{ data: payload('{"manifestKey":"vmconvoy/b/vm/manifest.xml"}') }] } }],
  });
  assert.deepEqual(findSecrets('b/vm', clean.join('\n'), ['topsecretvalue']), []);
  const url = 'https://s3/bucket/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F2026&X-Amz-Signature=abc';
  const leaky = historyText({
    events: [
      { failure: { message: payload(`fetch ${url} failed`) } },
      { data: payload(Buffer.from('topsecretvalue').toString('base64')) },
    ],
  });
  const found = findSecrets('b/vm', leaky.join('\n'), ['topsecretvalue']).map((f) => f.what);
  assert.ok(found.some((w) => w.includes('X-Amz-Signature')));
  assert.ok(found.some((w) => w.includes('X-Amz-Credential')));
  assert.ok(found.includes('secret "tops…"'));
});

test('the secret scanner finds presigned URLs and secrets in their percent-encoded forms too', () => {
  const url =
    'https://s3/bucket/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026&X-Amz-Security-Token=tok&X-Amz-Signature=abc';
  const once = encodeURIComponent(url);
  const twice = encodeURIComponent(once);
  for (const text of [once, twice]) {
    const found = findSecrets('b/vm', `EC2 said: ${text}`, []).map((f) => f.what);
    assert.ok(
      found.some((w) => w.includes('X-Amz-Signature')),
      `${text}: ${found.join(', ')}`
    );
    assert.ok(found.some((w) => w.includes('X-Amz-Credential')));
    assert.ok(found.some((w) => w.includes('X-Amz-Security-Token')));
    assert.ok(
      found.some((w) => w.includes('AKIA')),
      'an access key ID behind an encoded ='
    );
  }
  const sigV2 = encodeURIComponent('https://s3/b/k?AWSAccessKeyId=x&Signature=abc');
  assert.equal(findSecrets('b/vm', sigV2, []).length, 2);
  assert.deepEqual(findSecrets('b/vm', 'x?Signature=<removed>&AWSAccessKeyId=<removed>', []), [], 'redacted text');
  const secret = 'pa/ss+word=1';
  assert.ok(findSecrets('b/vm', `k=${encodeURIComponent(secret)}`, [secret]).length > 0, 'a secret, percent-encoded');
});
