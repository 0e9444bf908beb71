import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConversionTask } from '@aws-sdk/client-ec2';
import { toConversionProgress } from '../../activities/describe-conversion';
import { redact } from '../../common/redact';
import { findSecrets } from '../helpers/secret-scan';

const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SIG = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
const TOKEN = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ';
const presigned =
  `https://bucket.s3.amazonaws.com/vmconvoy/b/vm/manifest.xml?X-Amz-Algorithm=AWS4-HMAC-SHA256` +
  `&X-Amz-Credential=${KEY_ID}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=${encodeURIComponent(TOKEN)}` +
  `&X-Amz-Signature=${SIG}`;

/** Every form a presigned URL takes when AWS quotes it inside other text. */
const FORMS: Array<[string, string]> = [
  ['plain', presigned],
  ['percent-encoded once (a URL inside a query or form)', encodeURIComponent(presigned)],
  ['percent-encoded twice', encodeURIComponent(encodeURIComponent(presigned))],
  ['an encoded query alone', encodeURIComponent(presigned.split('?')[1]!)],
  [
    'a SigV2 URL, encoded',
    encodeURIComponent(`https://b.s3.amazonaws.com/k?AWSAccessKeyId=${KEY_ID}&Signature=${SIG}`),
  ],
  ['SigV2 parameters after an encoded &', `x%26Signature%3D${SIG}%26AWSAccessKeyId%3D${KEY_ID}`],
];

for (const [label, form] of FORMS) {
  test(`redact removes signatures, tokens and key IDs: ${label}`, () => {
    const out = redact(`ClientError: could not fetch ${form} (403)`);
    assert.ok(!out.includes(SIG), out);
    assert.ok(!out.includes(KEY_ID), out);
    assert.ok(!out.includes(TOKEN.slice(0, 20)), out);
    assert.match(out, /^ClientError: could not fetch /);
    assert.deepEqual(findSecrets('b/vm', out, []), [], 'the scanner finds nothing left');
  });
}

test('redact leaves ordinary status messages alone', () => {
  for (const text of ['Progress: 42%', 'ClientError: Footers not identical', 'Unsupported kernel version 2.6.9 (x%)'])
    assert.equal(redact(text), text);
});

test('EC2 status messages are redacted before they reach the workflow (status and failure message)', () => {
  const task = (state: string, message: string): ConversionTask =>
    ({
      ConversionTaskId: 'import-i-0123',
      State: state,
      StatusMessage: message,
      ImportInstance: { Volumes: [{ BytesConverted: 10 }] },
    }) as ConversionTask;
  const message = `ClientError: Unable to read ${encodeURIComponent(presigned)}`;
  for (const state of ['active', 'cancelled']) {
    const progress = toConversionProgress(task(state, message), 100);
    const text = JSON.stringify(progress);
    assert.ok(!text.includes(SIG) && !text.includes(KEY_ID), text);
    assert.match(progress.statusMessage, /^ClientError: Unable to read https%3A%2F%2Fbucket/);
    assert.deepEqual(findSecrets('b/vm', text, []), []);
  }
});
