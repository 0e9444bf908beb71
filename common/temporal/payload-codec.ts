/**
 * Optional payload encryption: AES-256-GCM over each whole payload (metadata and data), so workflow
 * inputs, results and failures' details are unreadable in the server's database and in histories
 * fetched without the key. The key ID travels in the payload metadata, so keys can be rotated: the
 * current key encrypts, any configured key decrypts. Search attributes are never encoded (Temporal indexes
 * them), which is why vmconvoy puts only names and phases there.
 *
 * Keys: VMCONVOY_CODEC_KEY = base64 of 32 random bytes (`openssl rand -base64 32`), VMCONVOY_CODEC_KEY_ID
 * (default `default`), and VMCONVOY_CODEC_OLD_KEYS = `id:base64,id:base64` for keys being retired. Every ID
 * names one key: a new key whose ID is left at `default` beside an old `default:` would otherwise be
 * replaced by the old one and never used, so a repeated ID stops the process at start.
 *
 * Failures' messages and stack traces are encoded too (`encodeCommonAttributes`): an error message can name
 * a path, a host or a value from the inventory.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CodecKeys {
  currentKeyId: string;
  keys: Map<string, Buffer>;
}

function decodeKey(id: string, base64: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32)
    throw new Error(`codec key "${id}" must be 32 bytes of base64 (openssl rand -base64 32); got ${key.length} bytes`);
  return key;
}

/** Reads the codec keys from the environment; undefined when encryption is off. */
export function codecKeysFromEnv(env: NodeJS.ProcessEnv = process.env): CodecKeys | undefined {
  const current = env.VMCONVOY_CODEC_KEY;
  if (!current) return undefined;
  const currentKeyId = env.VMCONVOY_CODEC_KEY_ID || 'default';
  const keys = new Map<string, Buffer>([[currentKeyId, decodeKey(currentKeyId, current)]]);
  for (const entry of (env.VMCONVOY_CODEC_OLD_KEYS ?? '').split(',').filter(Boolean)) {
    const [id, value] = entry.split(':');
    if (!id || !value) throw new Error(`VMCONVOY_CODEC_OLD_KEYS entries are id:base64 (got "${entry.slice(0, 12)}…")`);
    if (keys.has(id))
      throw new Error(
        id === currentKeyId
          ? `codec key ID "${id}" names both VMCONVOY_CODEC_KEY and a key in VMCONVOY_CODEC_OLD_KEYS: give the new key its own VMCONVOY_CODEC_KEY_ID (payloads name the key that encrypted them)`
          : `codec key ID "${id}" appears twice in VMCONVOY_CODEC_OLD_KEYS`
      );
    keys.set(id, decodeKey(id, value));
  }
  return { currentKeyId, keys };
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  // async so that a bad payload rejects the promise rather than throwing at the call.
  async encode(payloads: Payload[]): Promise<Payload[]> {
    await Promise.resolve();
    const key = this.keys.keys.get(this.keys.currentKeyId)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          'encryption-key-id': Buffer.from(this.keys.currentKeyId),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    await Promise.resolve();
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding ? Buffer.from(payload.metadata.encoding).toString() : undefined;
      if (encoding !== ENCRYPTED_ENCODING) return payload; // written before encryption was turned on
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
      const key = this.keys.keys.get(keyId);
      if (!key)
        throw new Error(
          `payload encrypted with key "${keyId}", which is not configured (VMCONVOY_CODEC_KEY / _OLD_KEYS)`
        );
      const data = Buffer.from(payload.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`encrypted payload too short (${data.length} bytes)`);
      // The tag length pinned: without it a truncated tag (down to 4 bytes) would be accepted.
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * The data converter for workers and clients: the codec, and failures whose message and stack trace travel
 * as an encoded payload (./failure-converter.ts), when keys are configured; else the default.
 */
export function dataConverterFromEnv(
  env: NodeJS.ProcessEnv = process.env
): Pick<DataConverter, 'payloadCodecs' | 'failureConverterPath'> | undefined {
  const keys = codecKeysFromEnv(env);
  return keys
    ? { payloadCodecs: [new AesGcmPayloadCodec(keys)], failureConverterPath: FAILURE_CONVERTER_PATH }
    : undefined;
}

/**
 * The module exporting the encoding failure converter (./failure-converter.ts). A worker that bundles its
 * workflow code itself must pass it to bundleWorkflowCode as `failureConverterPath` too.
 */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');
