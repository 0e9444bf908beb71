/**
 * `vmconvoy sim`: the EC2 VM-Import simulator as a process. It serves until SIGINT or SIGTERM, then
 * flushes its state file and exits 0.
 *
 *   vmconvoy sim [--port N] [--host 127.0.0.1] [--state FILE] [--access-key K --secret-key S] [--region R] [--config FILE]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startSimulator } from './server';

export const SIM_USAGE = `Usage: vmconvoy sim [options]

Runs the EC2 VM-Import simulator (ImportInstance & friends, SigV4-checked) until Ctrl-C or SIGTERM.

Options:
  --port <n>          port to listen on; 0 = a free one (default: 4566)
  --host <address>    address to bind (default: 127.0.0.1)
  --state <file>      keep tasks, instances and volumes in this JSON file across restarts
  --access-key <id>   the access key ID clients must sign with (default: vmconvoy-local)
  --secret-key <key>  its secret (default: vmconvoy-local-secret)
  --region <name>     the region clients must sign for (default: us-east-1)
  --config <file>     JSON config (speeds, limits, faults) applied over the defaults
  -h, --help          show this help

Prints "EC2 simulator listening on http://HOST:PORT" when ready.`;

/**
 * Parses the arguments, starts the simulator and resolves only once it has been stopped by SIGINT/SIGTERM
 * and its state flushed (so a caller that exits when this resolves keeps serving until then).
 */
export async function runSimulatorCli(argv: string[], out: (line: string) => void = console.log): Promise<void> {
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
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    out(SIM_USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535 (got ${values.port})`);
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
  out(`EC2 simulator listening on ${sim.url}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await sim.close();
}

if (require.main === module) {
  runSimulatorCli(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    }
  );
}
