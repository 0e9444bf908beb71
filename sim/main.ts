/**
 * `vmconvoy sim`: the EC2 VM-Import simulator as a process. It serves until SIGINT or SIGTERM, then
 * flushes its state file and exits 0.
 *
 *   vmconvoy sim [--port N] [--host 127.0.0.1] [--state FILE] [--access-key K --secret-key S] [--region R]
 *                [--profile fast|realistic] [--config FILE]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { PROFILES } from './config';
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
  --profile <name>    timing preset: fast (default; sub-second conversions) or realistic (minutes per GiB,
                      Pending while EC2 reads the image, a conversion queue, late listings; sim/README.md)
  --config <file>     JSON config (speeds, limits, faults) applied over the defaults, after --profile
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
      profile: { type: 'string' },
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
  const config = await startConfig(values.profile, values.config);
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

/**
 * The start config: `--profile` as the config's `profile` (the preset first, the file's own speed and
 * consistency keys on top, as `POST /_sim/config` merges), refused when the file names another profile.
 */
async function startConfig(profile: string | undefined, file: string | undefined): Promise<unknown> {
  if (profile !== undefined && !(PROFILES as readonly string[]).includes(profile))
    throw new Error(`--profile must be one of ${PROFILES.join(', ')} (got ${profile})`);
  const fromFile = file ? (JSON.parse(await readFile(file, 'utf8')) as unknown) : undefined;
  if (profile === undefined) return fromFile;
  if (fromFile === undefined) return { profile };
  if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile))
    throw new Error(`${file}: the config must be a JSON object`);
  const named = (fromFile as { profile?: unknown }).profile;
  if (named !== undefined && named !== profile)
    throw new Error(`--profile ${profile} but ${file} says "profile": ${JSON.stringify(named)}: give one`);
  return { ...fromFile, profile };
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
