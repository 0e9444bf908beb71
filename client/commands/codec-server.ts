/**
 * `vmconvoy codec-server`: decodes the workers' encrypted payloads for the Temporal Web UI (worker/codec-server.ts),
 * in the foreground until Ctrl-C. Callers authenticate with a bearer token from VMCONVOY_CODEC_TOKEN (read
 * from the environment, never from the command line, where `ps` would show it).
 */
import { ExitError } from '../errors';
import { uiUrl } from '../settings';
import type { CommandSpec } from './command';
import { untilInterrupted } from './dev';

export const codecServerSpec: CommandSpec<{ port: string; corsOrigin?: string; allowedHost?: string }> = {
  name: 'codec-server',
  summary: 'decode encrypted payloads for the Temporal Web UI (needs VMCONVOY_CODEC_KEY and VMCONVOY_CODEC_TOKEN)',
  options: [
    { flags: '--port <n>', description: 'port to listen on', default: '8888' },
    {
      flags: '--cors-origin <url>',
      description: "the Web UI origin allowed to call it (default: the local environment's Web UI)",
    },
    { flags: '--allowed-host <host:port>', description: 'a Host name callers use besides 127.0.0.1:PORT (a proxy)' },
  ],
  examples: [
    'VMCONVOY_CODEC_TOKEN=$(openssl rand -hex 32) vmconvoy codec-server & temporal workflow show -w ID --codec-endpoint http://127.0.0.1:8888 --codec-auth "Bearer $VMCONVOY_CODEC_TOKEN"',
  ],
  async run({ opts }, { env, printer }) {
    const { AesGcmPayloadCodec, codecKeysFromEnv } = await import('../../common/temporal/payload-codec');
    const { startCodecServer } = await import('../../worker/codec-server');
    const { temporalConnectSettings } = await import('../../common/temporal/connection');
    const keys = codecKeysFromEnv(env);
    if (!keys) throw new ExitError(1, 'set VMCONVOY_CODEC_KEY (openssl rand -base64 32) to the key the workers use');
    const tokens = (env.VMCONVOY_CODEC_TOKEN ?? '').split(',').filter(Boolean);
    if (tokens.length === 0)
      throw new ExitError(
        1,
        'set VMCONVOY_CODEC_TOKEN (openssl rand -hex 32): the codec server decrypts only for callers that send it as a bearer token'
      );
    const server = await startCodecServer({
      codec: new AesGcmPayloadCodec(keys),
      namespace: temporalConnectSettings(env).namespace,
      tokens,
      port: Number(opts.port),
      corsOrigins: [opts.corsOrigin ?? uiUrl(env)],
      allowedHosts: opts.allowedHost ? [opts.allowedHost] : [],
    });
    printer.line(`codec server listening on ${server.url}`);
    await untilInterrupted();
  },
};
