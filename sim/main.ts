/**
 * `vmconvoy sim`: the EC2 VM-Import simulator as a process.
 *
 *   vmconvoy sim [--port N] [--host 127.0.0.1] [--state FILE] [--access-key K --secret-key S] [--region R] [--config FILE]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startSimulator } from './server';

export async function runSimulatorCli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '4566' },
      host: { type: 'string', default: '127.0.0.1' },
      state: { type: 'string' },
      'access-key': { type: 'string', default: 'vmconvoy-local' },
      'secret-key': { type: 'string', default: 'vmconvoy-local-secret' },
      region: { type: 'string', default: 'us-east-1' },
      config: { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535 (got ${values.port})`);
  const config = values.config ? (JSON.parse(await readFile(values.config, 'utf8')) as unknown) : undefined;
  const sim = await startSimulator({
    port,
    host: values.host,
    stateFile: values.state,
    accessKeyId: values['access-key'],
    secretAccessKey: values['secret-key'],
    region: values.region,
    config,
  });
  console.log(`EC2 simulator listening on ${sim.url}`);
  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1)
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  runSimulatorCli(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
