/**
 * The `vmconvoy` command line: the commands listed in client/commands/index.ts as a commander program. Each
 * returns a value that client/output/printer.ts prints as text or, with --json, as JSON.
 * Exit codes: 0 ok, 1 invalid input or usage, 2 the batch ended with failed VMs, 3 Temporal unreachable.
 */
import { Command } from 'commander';
import { COMMANDS } from './commands';
import { addCommand, examplesHelp } from './commands/command';
import { runCommand } from './commands/run-command';
import { isUnreachable, unreachableError } from './connect';
import { ExitError } from './errors';
import type { Io } from './output/printer';
import { defaultIo } from './output/printer';
import { layoutText } from './output/terminal-text';
import { effectiveEnv, takeEnvOption } from './settings';

export type { Io } from './output/printer';

const PROGRAM_HELP = `${examplesHelp(['vmconvoy dev', 'vmconvoy start examples/inventory.csv --batch wave-a --wait'])}

Settings come from the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, VMCONVOY_TASK_QUEUE,
AWS_REGION, VMCONVOY_BUCKET, VMCONVOY_KEY_PREFIX, AWS_ENDPOINT_URL_EC2/S3, AWS credentials,
VMCONVOY_TEMPORAL_UI (the Web UI's URL for links). When none of TEMPORAL_ADDRESS, VMCONVOY_BUCKET or
AWS_ENDPOINT_URL_* is set and .vmconvoy/env.json exists with loopback endpoints only, the commands use the
local environment that \`vmconvoy dev\` wrote there; \`--env FILE\` (or $VMCONVOY_ENV_FILE) names such a file
explicitly and wins over the environment. The operator's session token never goes with its keys.

Exit codes: 0 success; 1 invalid input or usage; 2 the batch ended with failed VMs; 3 Temporal unreachable.`;

export function buildProgram(env: NodeJS.ProcessEnv, io: Io = defaultIo(env)): Command {
  const program = new Command('vmconvoy')
    .description('Migrate fleets of VMs into Amazon EC2 with VM Import (ImportInstance), orchestrated by Temporal.')
    .showHelpAfterError('(add --help for usage and an example)')
    .addHelpText('after', PROGRAM_HELP)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.write(s), writeErr: (s) => io.writeErr(s) });
  for (const spec of COMMANDS) addCommand(program, spec, (call) => runCommand(spec, call, env, io));
  return program;
}

export async function main(argv: string[], baseEnv: NodeJS.ProcessEnv = process.env, io?: Io): Promise<number> {
  // Error messages can carry an inventory's names and AWS's words: shown as text, never as terminal codes.
  const errLine = (text: string): void => {
    const shown = layoutText(text);
    if (io) io.err(shown);
    else process.stderr.write(`${shown}\n`);
  };
  const { argv: args, envFile } = takeEnvOption(argv);
  try {
    const env = effectiveEnv(baseEnv, envFile);
    await buildProgram(env, io ?? defaultIo(env)).parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitError) {
      if (err.message) errLine(err.message);
      return err.code;
    }
    const e = err as { code?: string; exitCode?: number };
    // Commander already printed usage errors; --help ends here too, with exit code 0.
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode === 0 ? 0 : 1;
    if (isUnreachable(err)) {
      const unreachable = unreachableError(effectiveEnvOr(baseEnv, envFile), err);
      errLine(unreachable.message);
      return unreachable.code;
    }
    errLine(`vmconvoy: ${(err as Error).message ?? String(err)}`);
    errLine(baseEnv.VMCONVOY_DEBUG ? String((err as Error).stack) : '(set VMCONVOY_DEBUG=1 to see where it happened)');
    return 1;
  }
}

/** The effective environment, or the given one when env.json cannot be read (the error says what failed). */
function effectiveEnvOr(env: NodeJS.ProcessEnv, envFile: string | undefined): NodeJS.ProcessEnv {
  try {
    return effectiveEnv(env, envFile);
  } catch {
    return env;
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  main(argv).then(
    (code) => {
      // A server the command started (the simulator) keeps the process until it stops itself on Ctrl-C.
      if (code === 0 && COMMANDS.find((c) => c.name === argv[0])?.servesAfterAction) return;
      process.exit(code);
    },
    () => process.exit(1)
  );
}
