/**
 * `vmconvoy codec-server`: decodes the workers' encrypted payloads for the Temporal Web UI (worker/codec-server.ts),
 * in the foreground until Ctrl-C.
 */
import { ExitError } from '../errors';
import type { CommandSpec } from './command';
import { untilInterrupted } from './dev';

export const codecServerSpec: CommandSpec<{ port: string; corsOrigin: string }> = {
  name: 'codec-server',
  summary: 'decode encrypted payloads for the Temporal Web UI (needs VMCONVOY_CODEC_KEY)',
  options: [
    { flags: '--port <n>', description: 'port to listen on', default: '8888' },
    {
      flags: '--cors-origin <url>',
      description: 'the Web UI origin allowed to call it',
      default: 'http://localhost:8233',
    },
  ],
  examples: ['temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888 & vmconvoy codec-server'],
  async run({ opts }, { env, printer }) {
    const { AesGcmPayloadCodec, codecKeysFromEnv } = await import('../../common/temporal/payload-codec');
    const { startCodecServer } = await import('../../worker/codec-server');
    const keys = codecKeysFromEnv(env);
    if (!keys) throw new ExitError(1, 'set VMCONVOY_CODEC_KEY (openssl rand -base64 32) to the key the workers use');
    const codec = new AesGcmPayloadCodec(keys);
    const server = await startCodecServer({ codec, port: Number(opts.port), corsOrigins: [opts.corsOrigin] });
    printer.line(`codec server listening on ${server.url}`);
    await untilInterrupted();
  },
};
