import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmPayloadCodec, codecKeysFromEnv, ENCRYPTED_ENCODING } from '../../common/temporal/payload-codec';
import { startCodecServer } from '../../worker/codec-server';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

test('payloads are encrypted with the current key and decrypt back; ciphertext hides the plaintext', async () => {
  const codec = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyA, VMCONVOY_CODEC_KEY_ID: 'k1' })!);
  const plain = defaultPayloadConverter.toPayload({ vm: 'web-01', subnet: 'subnet-secret-ish' });
  const [sealed] = await codec.encode([plain]);
  assert.equal(Buffer.from(sealed!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
  assert.equal(Buffer.from(sealed!.metadata!['encryption-key-id']!).toString(), 'k1');
  assert.ok(!Buffer.from(sealed!.data!).toString('latin1').includes('web-01'), 'no plaintext in the ciphertext');
  const [opened] = await codec.decode([sealed!]);
  assert.deepEqual(defaultPayloadConverter.fromPayload(opened!), { vm: 'web-01', subnet: 'subnet-secret-ish' });
});

test('rotated keys still decrypt old payloads; a missing key or a tampered payload fails loudly', async () => {
  const old = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyA, VMCONVOY_CODEC_KEY_ID: 'k1' })!);
  const [sealed] = await old.encode([defaultPayloadConverter.toPayload('hello')]);
  const rotated = new AesGcmPayloadCodec(
    codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyB, VMCONVOY_CODEC_KEY_ID: 'k2', VMCONVOY_CODEC_OLD_KEYS: `k1:${keyA}` })!
  );
  assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([sealed!]))[0]!), 'hello');
  const onlyNew = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyB, VMCONVOY_CODEC_KEY_ID: 'k2' })!);
  await assert.rejects(onlyNew.decode([sealed!]), /encrypted with key "k1", which is not configured/);
  const tampered = { ...sealed!, data: Buffer.from(sealed!.data!) };
  tampered.data[20] = (tampered.data[20] ?? 0) ^ 0xff;
  await assert.rejects(old.decode([tampered]));
  assert.throws(() => codecKeysFromEnv({ VMCONVOY_CODEC_KEY: 'c2hvcnQ=' }), /must be 32 bytes/);
  assert.equal(codecKeysFromEnv({}), undefined, 'no key, no encryption');
});

test('the codec server decodes for the Web UI over HTTP with CORS for the allowed origin only', async () => {
  const codec = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyA })!);
  const server = await startCodecServer({ codec, corsOrigins: ['http://127.0.0.1:8233'] });
  try {
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload({ phase: 'Completed' })]);
    const body = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(sealed!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])
          ),
          data: Buffer.from(sealed!.data!).toString('base64'),
        },
      ],
    });
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      body,
      headers: { origin: 'http://127.0.0.1:8233', 'content-type': 'application/json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
    const out = (await res.json()) as { payloads: Array<{ data: string }> };
    assert.deepEqual(JSON.parse(Buffer.from(out.payloads[0]!.data, 'base64').toString()), { phase: 'Completed' });
    const other = await fetch(`${server.url}/decode`, {
      method: 'POST',
      body,
      headers: { origin: 'http://evil.example' },
    });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    assert.equal((await fetch(`${server.url}/decode`, { method: 'POST', body: 'not json' })).status, 400);
  } finally {
    await server.close();
  }
});
