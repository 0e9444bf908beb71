/**
 * The `vmconvoy` command line. Every command and flag is declared here; each command is a typed function
 * in client/commands that returns data, rendered here as text or JSON. Exit codes: 0 ok, 1 invalid input
 * or usage, 2 the batch ended with failed VMs, 3 Temporal unreachable.
 */
import { Command, InvalidArgumentError } from 'commander';
import { writeFile } from 'node:fs/promises';
import { batchView, statusJson } from './batch-view';
import { cancelCommand, pauseCommand, resumeCommand, retryCommand, setLimitsCommand } from './commands/batch-control';
import { startCommand } from './commands/start';
import { formatProblems, validateCommand } from './commands/validate';
import { connectClient } from './connect';
import { ExitError } from './errors';
import { renderReport, renderStatus, reportRows } from './output';
import { effectiveEnv } from './settings';

const positiveInt = (name: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number of at least 1`);
  return n;
};
const percent = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('must be a percentage from 0 to 100');
  return n;
};

function print(value: unknown, json: boolean | undefined, text: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text());
}

/** Polls the batch until it ends; on a terminal redraws, otherwise prints a line when the counts change. */
async function watch(batch: string, env: NodeJS.ProcessEnv, json = false): Promise<number> {
  const { client, close } = await connectClient(env);
  try {
    let last = '';
    for (;;) {
      const view = await batchView(client, batch);
      const counts = JSON.stringify(statusJson(view).counts);
      if (process.stdout.isTTY && !json) process.stdout.write(`\x1b[2J\x1b[H${renderStatus(view)}\n`);
      else if (counts !== last) console.log(json ? JSON.stringify(statusJson(view)) : `${new Date().toISOString()} ${view.state} ${counts}`);
      last = counts;
      if (view.state !== 'running' && view.state !== 'paused') {
        if (!process.stdout.isTTY && !json) console.log(renderStatus(view));
        return view.vms.some((v) => v.phase === 'Failed') ? 2 : 0;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await close();
  }
}

export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command('vmconvoy')
    .description('Migrate fleets of VMs into Amazon EC2 with VM Import (ImportInstance), orchestrated by Temporal.')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nSettings come from the environment (AWS_REGION, VMCONVOY_BUCKET, TEMPORAL_ADDRESS, ...), or from\n.vmconvoy/env.json written by `vmconvoy dev` when those are unset (override with VMCONVOY_ENV_FILE).'
    );
  program.exitOverride();

  program
    .command('validate <csv>')
    .description('check every row and every disk image of an inventory; nothing is uploaded')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  vmconvoy validate examples/inventory.csv')
    .action(async (csv: string, o: { json?: boolean }) => {
      const result = await validateCommand(csv);
      print(result, o.json, () => formatProblems(csv, result));
      if (!result.ok) throw new ExitError(1, '');
    });

  program
    .command('start <csv>')
    .description('validate, then start the batch (or attach to it when it is running)')
    .requiredOption('--batch <name>', 'batch name: the fleet workflow ID, and the prefix of every VM workflow ID')
    .option('--max-uploads <n>', 'VMs uploading at once', positiveInt('--max-uploads'))
    .option('--max-conversions <n>', 'conversions at once in this account and region (EC2 allows about 5)', positiveInt('--max-conversions'))
    .option('--canary <k>', 'the first K VMs must complete before the others start', positiveInt('--canary'))
    .option('--failure-budget <pct>', 'pause once more than this % of finished VMs failed', percent)
    .option('--dry-run', 'pre-flight and ImportInstance with DryRun for every VM, then stop')
    .option('--wait', 'show progress until the batch ends')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  vmconvoy start examples/inventory.csv --batch wave-a --max-uploads 4 --max-conversions 5 --wait')
    .action(async (csv: string, o: { batch: string; maxUploads?: number; maxConversions?: number; canary?: number; failureBudget?: number; dryRun?: boolean; wait?: boolean; json?: boolean }) => {
      const result = await startCommand(csv, o, env);
      print(result, o.json, () => `${result.attached ? 'attached to running' : 'started'} batch ${result.batch} (${result.vms} VMs)\nTemporal UI: ${result.uiLink}`);
      if (o.wait) {
        const code = await watch(o.batch, env, o.json);
        if (code === 2) throw new ExitError(2, `batch ${o.batch} ended with failed VMs: see \`vmconvoy status ${o.batch}\``);
      }
    });

  program
    .command('status <batch>')
    .description('counts by phase and a table of VMs')
    .option('--json', 'the status contract as JSON')
    .option('--watch', 'keep redrawing until the batch ends')
    .addHelpText('after', '\nExample:\n  vmconvoy status wave-a --json')
    .action(async (batch: string, o: { json?: boolean; watch?: boolean }) => {
      if (o.watch) {
        await watch(batch, env, o.json);
        return;
      }
      const { client, close } = await connectClient(env);
      try {
        const view = await batchView(client, batch);
        if (view.state === 'unknown' && view.vms.length === 0) throw new ExitError(1, `no batch "${batch}"`);
        print(statusJson(view), o.json, () => renderStatus(view));
      } finally {
        await close();
      }
    });

  const control = (name: string, description: string, example: string, run: (batch: string, o: Record<string, unknown>) => Promise<unknown>) =>
    program
      .command(`${name} <batch>`)
      .description(description)
      .option('--json', 'machine-readable output')
      .addHelpText('after', `\nExample:\n  ${example}`)
      .action(async (batch: string, o: Record<string, unknown>) => {
        const result = await run(batch, o);
        print(result, o.json as boolean | undefined, () => (typeof result === 'string' ? result : JSON.stringify(result)));
      });
  const withClient = async <T>(fn: (client: Awaited<ReturnType<typeof connectClient>>['client']) => Promise<T>): Promise<T> => {
    const { client, close } = await connectClient(env);
    try {
      return await fn(client);
    } finally {
      await close();
    }
  };
  control('pause', 'start no new VMs (running ones go on)', 'vmconvoy pause wave-a', (b) => withClient((c) => pauseCommand(c, b))).option('--reason <text>', 'shown in status');
  control('resume', 'start VMs again', 'vmconvoy resume wave-a', (b) => withClient((c) => resumeCommand(c, b)));
  control('cancel', 'cancel the batch, or one VM with --vm', 'vmconvoy cancel wave-a --vm web-01', (b, o) => withClient((c) => cancelCommand(c, b, o.vm as string | undefined))).option('--vm <name>', 'only this VM');
  control('retry', 'run failed and cancelled VMs again, reusing their uploaded parts', 'vmconvoy retry wave-a', (b) => withClient((c) => retryCommand(c, b)));
  control('set-limits', 'change limits while the batch runs', 'vmconvoy set-limits wave-a --max-uploads 8', (b, o) =>
    withClient((c) => setLimitsCommand(c, b, { maxUploads: o.maxUploads as number | undefined, maxConversions: o.maxConversions as number | undefined }))
  )
    .option('--max-uploads <n>', 'VMs uploading at once', positiveInt('--max-uploads'))
    .option('--max-conversions <n>', 'conversions at once in the account and region', positiveInt('--max-conversions'));

  program
    .command('report <batch>')
    .description('one row per VM: outcome, AWS IDs, bytes, times, error')
    .option('--format <format>', 'csv, json or md', 'csv')
    .option('--out <file>', 'write to a file instead of stdout')
    .addHelpText('after', '\nExample:\n  vmconvoy report wave-a --format md --out wave-a.md')
    .action(async (batch: string, o: { format: string; out?: string }) => {
      if (!['csv', 'json', 'md'].includes(o.format)) throw new ExitError(1, `--format must be csv, json or md (got ${o.format})`);
      const text = await withClient(async (client) => renderReport(reportRows((await batchView(client, batch)).vms), o.format as 'csv' | 'json' | 'md'));
      if (o.out) await writeFile(o.out, `${text}\n`);
      else console.log(text);
    });

  program
    .command('worker')
    .description('run a worker: polls the task queues and runs workflows and activities')
    .option('--log-format <format>', 'json or pretty')
    .option('--upload-only', 'serve only the upload task queue (a site worker next to the images)')
    .addHelpText('after', '\nExample:\n  VMCONVOY_BUCKET=my-staging AWS_REGION=us-east-1 vmconvoy worker --log-format json')
    .action(async (o: { logFormat?: 'json' | 'pretty'; uploadOnly?: boolean }) => {
      const { runWorkerProcess } = await import('../worker/main');
      await runWorkerProcess({ logFormat: o.logFormat, uploadOnly: o.uploadOnly }, env);
    });

  program
    .command('sim')
    .description('run the EC2 VM-Import simulator (flags: --port --host --state --access-key --secret-key --region --config)')
    .allowUnknownOption()
    .allowExcessArguments(true)
    .helpOption(false)
    .addHelpText('after', '\nExample:\n  vmconvoy sim --port 4566 --state .vmconvoy/sim-state.json')
    .action(async (_o: unknown, cmd: Command) => {
      const { runSimulatorCli } = await import('../sim/main');
      await runSimulatorCli(cmd.args);
    });

  program
    .command('codec-server')
    .description('decode encrypted payloads for the Temporal Web UI (needs VMCONVOY_CODEC_KEY)')
    .option('--port <n>', 'port', '8888')
    .option('--cors-origin <url>', 'the Web UI origin allowed to call it', 'http://localhost:8233')
    .addHelpText('after', '\nExample:\n  temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888 & vmconvoy codec-server')
    .action(async (o: { port: string; corsOrigin: string }) => {
      const { AesGcmPayloadCodec, codecKeysFromEnv } = await import('../worker/payload-codec');
      const { startCodecServer } = await import('../worker/codec-server');
      const keys = codecKeysFromEnv(env);
      if (!keys) throw new ExitError(1, 'set VMCONVOY_CODEC_KEY (openssl rand -base64 32) to the key the workers use');
      const server = await startCodecServer({ codec: new AesGcmPayloadCodec(keys), port: Number(o.port), corsOrigins: [o.corsOrigin] });
      console.log(`codec server listening on ${server.url}`);
      await new Promise(() => undefined);
    });

  program
    .command('setup')
    .description('register vmconvoy\'s search attributes and set the retention on an existing namespace (idempotent)')
    .option('--retention-days <n>', 'how long closed workflows stay readable', positiveInt('--retention-days'), 30)
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  TEMPORAL_ADDRESS=temporal.example.com:7233 vmconvoy setup --retention-days 60')
    .action(async (o: { retentionDays: number; json?: boolean }) => {
      const { setupCommand } = await import('./commands/setup');
      const { connection, namespace, close } = await connectClient(env);
      try {
        const result = await setupCommand(connection, namespace, o.retentionDays);
        print(result, o.json, () =>
          `namespace ${result.namespace}: search attributes ${result.added.length > 0 ? `added ${result.added.join(', ')}` : 'already present'}; retention ${result.retentionDays} days`
        );
      } finally {
        await close();
      }
    });

  program
    .command('dev')
    .description('run the local environment: Temporal dev server + Web UI, S3 server, EC2 simulator, a worker')
    .option('--state-dir <dir>', 'where all state lives (kept across restarts)', '.vmconvoy')
    .option('--no-worker', 'do not start a worker')
    .addHelpText('after', '\nExample:\n  vmconvoy dev            # then, in another terminal: vmconvoy start examples/inventory.csv --batch demo --wait')
    .action(async (o: { stateDir: string; worker: boolean }) => {
      const { startLocalEnv, describeLocalEnv } = await import('../dev/local-env');
      const local = await startLocalEnv({ stateDir: o.stateDir, worker: o.worker });
      console.log(`${describeLocalEnv(local.info, o.stateDir)}\nReady. Ctrl-C stops everything; starting again continues the batches.`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      console.log('stopping…');
      await local.stop();
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const env = effectiveEnv(process.env);
  try {
    await buildProgram(env).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitError) {
      if (err.message) console.error(err.message);
      return err.code;
    }
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // --help and --version end here too, with exit code 0.
      return e.exitCode ?? 1;
    }
    console.error(err);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(1)
  );
}
