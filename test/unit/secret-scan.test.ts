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
