import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import http from 'node:http';
import type { FailureConverter } from '@temporalio/common';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  AesGcmPayloadCodec,
  codecKeysFromEnv,
  dataConverterFromEnv,
  ENCRYPTED_ENCODING,
} from '../../common/temporal/payload-codec';
import { DEV_UI_ORIGINS, startCodecServer } from '../../worker/codec-server';

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

test('a rotated-in key whose ID is left at the default is a start-up error, not a silent no-op', () => {
  // The old key kept its default ID; the new one was set without an ID: both would be "default".
  assert.throws(
    () => codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyB, VMCONVOY_CODEC_OLD_KEYS: `default:${keyA}` }),
    /codec key ID "default" names both VMCONVOY_CODEC_KEY and a key in VMCONVOY_CODEC_OLD_KEYS/
  );
  assert.throws(
    () =>
      codecKeysFromEnv({
        VMCONVOY_CODEC_KEY: keyB,
        VMCONVOY_CODEC_KEY_ID: 'k3',
        VMCONVOY_CODEC_OLD_KEYS: `k1:${keyA},k1:${keyB}`,
      }),
    /"k1" appears twice/
  );
});

test('an encrypted payload too short to hold an IV and a full 16-byte tag is refused as such', async () => {
  const codec = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyA })!);
  const [sealed] = await codec.encode([defaultPayloadConverter.toPayload('x')]);
  const short = { ...sealed!, data: Buffer.from(sealed!.data!).subarray(0, 20) };
  await assert.rejects(codec.decode([short]), /too short \(20 bytes\)/);
});

test('failure messages and stack traces are encoded, so the codec encrypts them', async () => {
  const converter = dataConverterFromEnv({ VMCONVOY_CODEC_KEY: keyA })!;
  assert.ok(converter.failureConverterPath, 'a failure converter for workers, clients and the workflow bundle');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { failureConverter } = require(converter.failureConverterPath) as { failureConverter: FailureConverter };
  const failure = failureConverter.errorToFailure(
    ApplicationFailure.nonRetryable('image /srv/secret-share/db01.vmdk not found', 'ImageNotFound'),
    defaultPayloadConverter
  );
  assert.equal(failure.message, 'Encoded failure');
  assert.equal(failure.stackTrace, '');
  assert.ok(failure.encodedAttributes, 'message and stack trace moved into a payload');
  const [sealed] = await converter.payloadCodecs![0]!.encode([failure.encodedAttributes]);
  const bytes = Buffer.from(temporal.api.common.v1.Payload.encode(sealed!).finish()).toString('latin1');
  assert.ok(!bytes.includes('secret-share'), 'the payload the server stores is ciphertext');
  const back = failureConverter.failureToError(
    { ...failure, encodedAttributes: (await converter.payloadCodecs![0]!.decode([sealed!]))[0] },
    defaultPayloadConverter
  );
  assert.equal(back.message, 'image /srv/secret-share/db01.vmdk not found');
});

/** One request with full control of the headers (fetch cannot set Host). */
function call(
  url: string,
  path: string,
  headers: Record<string, string>,
  body = ''
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the codec server answers only an authorised caller for its namespace under its own Host name', async () => {
  const codec = new AesGcmPayloadCodec(codecKeysFromEnv({ VMCONVOY_CODEC_KEY: keyA })!);
  await assert.rejects(startCodecServer({ codec, namespace: 'default' }), /set VMCONVOY_CODEC_TOKEN/);
  const server = await startCodecServer({
    codec,
    namespace: 'prod',
    tokens: ['cli-token-0123456789'],
    verifyAccessToken: (token, namespace) => Promise.resolve(token === 'ui-access-token' && namespace === 'prod'),
  });
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
    const host = new URL(server.url).host;
    const ok = { host, 'x-namespace': 'prod', authorization: 'Bearer cli-token-0123456789' };
    const good = await call(server.url, '/decode', { ...ok, origin: 'http://127.0.0.1:8233' }, body);
    assert.equal(good.status, 200);
    assert.equal(good.headers['access-control-allow-origin'], 'http://127.0.0.1:8233', 'the dev UI by default');
    const out = JSON.parse(good.body) as { payloads: Array<{ data: string }> };
    assert.deepEqual(JSON.parse(Buffer.from(out.payloads[0]!.data, 'base64').toString()), { phase: 'Completed' });
    const ui = await call(server.url, '/decode', { ...ok, authorization: 'Bearer ui-access-token' }, body);
    assert.equal(ui.status, 200, 'the access token the Web UI forwards, once verified');

    const refused: Array<[string, Record<string, string>, number]> = [
      ['no token', { host, 'x-namespace': 'prod' }, 401],
      ['a wrong token', { ...ok, authorization: 'Bearer cli-token-0123456780' }, 401],
      ['a token the verifier refuses', { ...ok, authorization: 'Bearer someone-elses' }, 401],
      ['another namespace', { ...ok, 'x-namespace': 'other' }, 403],
      ['no namespace', { host, authorization: ok.authorization }, 403],
      ['a rebinding Host', { ...ok, host: `evil.example:${new URL(server.url).port}` }, 421],
    ];
    for (const [label, headers, status] of refused) {
      const res = await call(server.url, '/decode', headers, body);
      assert.equal(res.status, status, label);
      assert.ok(!res.body.includes('Completed'), label);
    }
    const other = await call(server.url, '/decode', { ...ok, origin: 'http://evil.example' }, body);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal((await call(server.url, '/decode', ok, 'not json')).status, 400);
    assert.ok(DEV_UI_ORIGINS.includes('http://127.0.0.1:8233'));
  } finally {
    await server.close();
  }
});
