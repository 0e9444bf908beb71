/**
 * The `vmconvoy` command line. Every command and flag is declared here; each command is a typed function
 * in client/commands that returns data, rendered by client/output as text or, with --json, as JSON.
 * Exit codes: 0 ok, 1 invalid input or usage, 2 the batch ended with failed VMs, 3 Temporal unreachable.
 */
import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import type { BatchView } from './batch-view';
import { statusJson } from './batch-view';
import { cancelCommand } from './commands/cancel';
import { devCommand, untilInterrupted } from './commands/dev';
import { pauseCommand } from './commands/pause';
import { reportCommand } from './commands/report';
import { resumeCommand } from './commands/resume';
import { retryCommand } from './commands/retry';
import { setLimitsCommand } from './commands/set-limits';
import { simCommand } from './commands/sim';
import { startCommand } from './commands/start';
import { exitCodeFor, statusCommand, watchCommand } from './commands/status';
import { validateCommand } from './commands/validate';
import { workerCommand } from './commands/worker';
import type { CliConnection } from './connect';
import { connectClient, isUnreachable, unreachableError } from './connect';
import { ExitError } from './errors';
import { paint, useColor } from './output/color';
import { renderProblems } from './output/problems';
import type { ReportFormat } from './output/report';
import { REPORT_FORMATS, renderReport } from './output/report';
import { changeLines, renderStatus } from './output/status';
import { batchUiLink, cliConfig, effectiveEnv } from './settings';

const positiveInt =
  (flag: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number of at least 1`);
    return n;
  };
/** `--max-api-rate`: requests per second (> 0), or `default` to remove the budget. */
const parseApiRate = (value: string): number | 'default' => {
  if (value === 'default') return 'default';
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('give requests per second (> 0), or "default" to remove the budget');
  return n;
};
const percentage = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('must be a percentage from 0 to 100');
  return n;
};

const example = (...lines: string[]): string => `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;

const ENV_HELP = `
Settings come from the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, VMCONVOY_TASK_QUEUE,
AWS_REGION, VMCONVOY_BUCKET, VMCONVOY_KEY_PREFIX, AWS_ENDPOINT_URL_EC2/S3, AWS credentials,
VMCONVOY_TEMPORAL_UI (the Web UI's URL for links). When none of TEMPORAL_ADDRESS, VMCONVOY_BUCKET or
AWS_ENDPOINT_URL_* is set and .vmconvoy/env.json (or $VMCONVOY_ENV_FILE) exists, the commands use the
local environment that \`vmconvoy dev\` wrote there.

Exit codes: 0 success; 1 invalid input or usage; 2 the batch ended with failed VMs; 3 Temporal unreachable.`;

export interface Io {
  /** A line to stdout / stderr. */
  out(text: string): void;
  err(text: string): void;
  /** Raw text (commander's help and usage errors). */
  write(text: string): void;
  writeErr(text: string): void;
  /** stdout is a terminal (redraws, progress bars). */
  tty: boolean;
  /** Colours (a terminal, and NO_COLOR unset). */
  color: boolean;
}

function defaultIo(env: NodeJS.ProcessEnv): Io {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    write: (text) => process.stdout.write(text),
    writeErr: (text) => process.stderr.write(text),
    tty: Boolean(process.stdout.isTTY),
    color: useColor(process.stdout, env),
  };
}

export function buildProgram(env: NodeJS.ProcessEnv, io: Io = defaultIo(env)): Command {
  const p = paint(io.color);
  const json = (value: unknown): void => io.out(JSON.stringify(value, null, 2));

  async function withConnection<T>(fn: (c: CliConnection) => Promise<T>): Promise<T> {
    const c = await connectClient(env);
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  }
  const withClient = <T>(fn: (client: Client) => Promise<T>): Promise<T> => withConnection((c) => fn(c.client));

  /** Follows a batch until it ends: redraws on a terminal, plain change lines otherwise, NDJSON with --json. */
  async function watchBatch(client: Client, batch: string, asJson: boolean, intervalMs: number): Promise<BatchView> {
    let previous: BatchView | undefined;
    let lastJson = '';
    const final = await watchCommand(client, batch, {
      intervalMs,
      onView: (view) => {
        if (asJson) {
          const line = JSON.stringify(statusJson(view));
          if (line !== lastJson) io.out(line);
          lastJson = line;
        } else if (io.tty) {
          io.out(`\x1b[H\x1b[J${renderStatus(view, { color: io.color, bars: true })}`);
        } else {
          for (const line of changeLines(previous, view)) io.out(line);
        }
        previous = view;
      },
    });
    if (!asJson && !io.tty) io.out(renderStatus(final));
    return final;
  }

  const program = new Command('vmconvoy')
    .description('Migrate fleets of VMs into Amazon EC2 with VM Import (ImportInstance), orchestrated by Temporal.')
    .showHelpAfterError('(add --help for usage and an example)')
    .addHelpText('after', `${example('vmconvoy dev', 'vmconvoy start examples/inventory.csv --batch wave-a --wait')}\n${ENV_HELP}`)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.write(s), writeErr: (s) => io.writeErr(s) });

  program
    .command('validate')
    .argument('<csv>', 'inventory CSV')
    .description('check every row and every disk image of an inventory (pre-flight); nothing is uploaded or started')
    .option('--json', 'print {ok, rows} or {ok: false, errors: [{line, column, message}]}')
    .addHelpText('after', example('vmconvoy validate examples/inventory.csv'))
    .action(async (csv: string, o: { json?: boolean }) => {
      const imageRoots = env.VMCONVOY_IMAGE_ROOTS?.split(':').filter(Boolean) ?? [];
      const result = await validateCommand(csv, { imageRoots });
      if (o.json) json(result);
      else io.out(renderProblems(csv, result, p));
      if (!result.ok) throw new ExitError(1, '');
    });

  program
    .command('start')
    .argument('<csv>', 'inventory CSV')
    .description('validate, store the inventory, then start the batch (or attach to it when it is running; a batch that ended resumes, skipping completed VMs)')
    .requiredOption('--batch <name>', 'batch name: the fleet workflow ID and the prefix of every VM workflow ID')
    .option('--max-uploads <n>', 'VMs in pre-flight/upload at once (default 4)', positiveInt('--max-uploads'))
    .option('--max-conversions <n>', 'conversions at once in this account and region; EC2 allows about 5 (default 5)', positiveInt('--max-conversions'))
    .option('--max-api-rate <rps>', 'AWS API budget: EC2 calls per second for every batch of this account and region; a poll is one request, an import or a validation a few ("default" removes it)', parseApiRate)
    .option('--canary <k>', 'the first K VMs must complete before any other starts', positiveInt('--canary'))
    .option('--failure-budget <pct>', 'pause once more than this % of finished VMs failed', percentage)
    .option('--dry-run', 'pre-flight and ImportInstance with DryRun for every VM, then stop (nothing is imported)')
    .option('--wait', 'show live progress until the batch ends (exit 2 when VMs failed)')
    .option('--json', 'machine-readable output (with --wait: one JSON object per line)')
    .addHelpText(
      'after',
      example(
        'vmconvoy start examples/inventory.csv --batch wave-a --max-uploads 4 --max-conversions 5 --wait',
        'vmconvoy start big.csv --batch prod-1 --canary 3 --failure-budget 10'
      )
    )
    .action(async (csv: string, o: { batch: string; maxUploads?: number; maxConversions?: number; maxApiRate?: number | 'default'; canary?: number; failureBudget?: number; dryRun?: boolean; wait?: boolean; json?: boolean }) => {
      const config = cliConfig(env);
      let c: CliConnection | undefined;
      try {
        const result = await startCommand(csv, o, config, async () => {
          c = await connectClient(env);
          return c.client;
        });
        if (!result.ok) {
          if (o.json) json(result);
          else io.err(renderProblems(csv, { ok: false, errors: result.errors }, paint(useColor(process.stderr, env))));
          throw new ExitError(1, '');
        }
        const uiLink = batchUiLink(env, c!.namespace, result.batch);
        if (o.json) io.out(JSON.stringify({ ...result, uiLink }, null, o.wait ? undefined : 2));
        else {
          const what = result.attached ? 'attached to running batch' : 'started batch';
          const waves = `${result.waves} wave${result.waves === 1 ? '' : 's'}`;
          io.out(`${p.green('✔')} ${what} ${p.bold(result.batch)} (${result.vms} VMs in ${waves}${result.dryRun ? ', dry run' : ''})`);
          io.out(`Temporal UI: ${uiLink}`);
          const limit = result.conversionLimit ?? 'unknown (its quota workflow did not answer: is a worker running?)';
          io.out(`Conversions at once in this account and region: ${limit}, shared by every batch there${o.maxConversions === undefined ? ' (set it with --max-conversions or `vmconvoy set-limits`)' : ''}`);
          if (result.awsApiBudget !== null) io.out(`AWS API budget: ${result.awsApiBudget} requests/s (change it live with \`vmconvoy set-limits ${result.batch} --max-api-rate N\`)`);
          if (!o.wait) io.out(p.dim(`follow it with: vmconvoy status ${result.batch} --watch`));
        }
        if (o.wait) {
          const final = await watchBatch(c!.client, result.batch, o.json ?? false, 1000);
          if (exitCodeFor(final) === 2) {
            throw new ExitError(2, `batch ${result.batch} ended with failed VMs: \`vmconvoy report ${result.batch} --format md\` lists the errors; fix them and run \`vmconvoy retry ${result.batch}\``);
          }
        }
      } finally {
        await c?.close();
      }
    });

  program
    .command('status')
    .argument('<batch>', 'batch name')
    .description('the batch: state, counts by phase, and every VM with its phase, progress, instance ID and error')
    .option('--json', 'print {batch, state, counts, vms} (with --watch: one object per line, on change)')
    .option('--watch', 'follow the batch until it ends: redraws with progress bars on a terminal, plain lines otherwise')
    .addOption(new Option('--interval <seconds>', 'seconds between two looks with --watch').default(1).argParser(positiveInt('--interval')))
    .addHelpText('after', example('vmconvoy status wave-a', 'vmconvoy status wave-a --json', 'vmconvoy status wave-a --watch'))
    .action(async (batch: string, o: { json?: boolean; watch?: boolean; interval: number }) => {
      const view = await withClient(async (client) => {
        if (o.watch) return watchBatch(client, batch, o.json ?? false, o.interval * 1000);
        const v = await statusCommand(client, batch);
        if (o.json) json(statusJson(v));
        else io.out(renderStatus(v, { color: io.color }));
        return v;
      });
      if (exitCodeFor(view) === 2) throw new ExitError(2, '');
    });

  program
    .command('pause')
    .argument('<batch>', 'batch name')
    .description('start no new VMs; the running ones go on')
    .option('--reason <text>', 'shown by status')
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('vmconvoy pause wave-a --reason "change freeze"'))
    .action(async (batch: string, o: { reason?: string; json?: boolean }) => {
      const result = await withClient((client) => pauseCommand(client, batch, o.reason));
      if (o.json) json(result);
      else io.out(`batch ${batch} paused: no new VMs start, running ones go on; \`vmconvoy resume ${batch}\` continues`);
    });

  program
    .command('resume')
    .argument('<batch>', 'batch name')
    .description('start VMs again after a pause (by an operator, the failure budget or a failed canary)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('vmconvoy resume wave-a'))
    .action(async (batch: string, o: { json?: boolean }) => {
      const result = await withClient((client) => resumeCommand(client, batch));
      if (o.json) json(result);
      else io.out(`batch ${batch} resumed`);
    });

  program
    .command('cancel')
    .argument('<batch>', 'batch name')
    .description('cancel the batch, or one VM with --vm: conversion tasks are cancelled and uploaded objects deleted')
    .option('--vm <name>', 'cancel only this VM')
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('vmconvoy cancel wave-a --vm web-01', 'vmconvoy cancel wave-a'))
    .action(async (batch: string, o: { vm?: string; json?: boolean }) => {
      const result = await withClient((client) => cancelCommand(client, batch, o.vm));
      if (o.json) json(result);
      else if (o.vm) io.out(`VM ${o.vm} of batch ${batch}: cancellation requested; \`vmconvoy retry ${batch}\` runs it again`);
      else io.out(`batch ${batch}: cancellation requested; its running VMs are cancelled and cleaned up`);
    });

  program
    .command('retry')
    .argument('<batch>', 'batch name')
    .description('run the failed and cancelled VMs again, reusing their uploaded parts (completed VMs never run twice)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('vmconvoy retry wave-a'))
    .action(async (batch: string, o: { json?: boolean }) => {
      const result = await withClient((client) => retryCommand(client, batch));
      if (o.json) json(result);
      else if (result.mode === 'requeued') io.out(`batch ${batch}: ${result.requeued} VM${result.requeued === 1 ? '' : 's'} re-queued`);
      else io.out(`batch ${batch} started again: failed and cancelled VMs run again, completed ones are kept`);
    });

  program
    .command('set-limits')
    .argument('<batch>', 'batch name')
    .description('change the batch limits while it runs')
    .option('--max-uploads <n>', 'VMs in pre-flight/upload at once', positiveInt('--max-uploads'))
    .option('--max-conversions <n>', 'conversions at once in the account and region', positiveInt('--max-conversions'))
    .option('--max-api-rate <rps>', 'AWS API budget: EC2 requests per second, shared by every batch of the account and region ("default" removes it)', parseApiRate)
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('vmconvoy set-limits wave-a --max-uploads 8 --max-conversions 5', 'vmconvoy set-limits wave-a --max-api-rate 10'))
    .action(async (batch: string, o: { maxUploads?: number; maxConversions?: number; maxApiRate?: number | 'default'; json?: boolean }) => {
      const result = await withClient((client) =>
        setLimitsCommand(client, batch, { maxUploads: o.maxUploads, maxConversions: o.maxConversions, maxApiRate: o.maxApiRate })
      );
      if (o.json) json(result);
      else {
        const l = result.limits;
        io.out(`batch ${batch} limits: ${l.maxUploads} uploads, ${l.maxConversions} conversions${l.maxInFlight ? `, ${l.maxInFlight} VMs in flight` : ''}`);
        if (result.awsApiBudget) {
          const rate = result.awsApiBudget.requestsPerSecond;
          io.out(`AWS API budget on task queue ${result.awsApiBudget.taskQueue}: ${rate === null ? 'none' : `${rate} requests/s`} (shared by every batch on it)`);
        }
      }
    });

  program
    .command('report')
    .argument('<batch>', 'batch name')
    .description('one row per VM: name, status, instance_id, volume_id, conversion_task_id, bytes_uploaded, started_at, finished_at, duration_s, error_type, error_message')
    .addOption(new Option('--format <format>', 'output format').choices(REPORT_FORMATS as string[]).default('csv'))
    .option('--json', 'same as --format json')
    .option('--out <file>', 'write to this file instead of stdout')
    .addHelpText('after', example('vmconvoy report wave-a --format md --out wave-a.md', 'vmconvoy report wave-a --format csv > wave-a.csv'))
    .action(async (batch: string, o: { format: ReportFormat; json?: boolean; out?: string }) => {
      const rows = await withClient((client) => reportCommand(client, batch));
      const text = renderReport(rows, o.json ? 'json' : o.format);
      if (o.out) {
        await writeFile(o.out, `${text}\n`);
        io.err(`${rows.length} VMs written to ${o.out}`);
      } else io.out(text);
    });

  program
    .command('setup')
    .description("register vmconvoy's search attributes (MigrationBatch, MigrationVm, MigrationPhase) and set the retention on an existing namespace (idempotent)")
    .addOption(new Option('--retention-days <days>', 'how long closed workflows stay readable').default(30).argParser(positiveInt('--retention-days')))
    .option('--json', 'machine-readable output')
    .addHelpText('after', example('TEMPORAL_ADDRESS=temporal.example.com:7233 TEMPORAL_NAMESPACE=migrations vmconvoy setup --retention-days 60'))
    .action(async (o: { retentionDays: number; json?: boolean }) => {
      const { setupCommand } = await import('./commands/setup');
      const result = await withConnection((c) => setupCommand(c.connection, c.namespace, o.retentionDays));
      if (o.json) json(result);
      else {
        const attributes = result.added.length > 0 ? `added ${result.added.join(', ')}` : 'already present';
        io.out(`namespace ${result.namespace}: search attributes ${attributes}; retention ${result.retentionDays} days`);
      }
    });

  program
    .command('worker')
    .description('run a worker: polls the task queues and runs the workflows and activities (start as many as you like, on many hosts)')
    .addOption(new Option('--log-format <format>', 'log lines as JSON or human-readable').choices(['json', 'pretty']))
    .option('--upload-only', 'serve only the upload task queue (VMCONVOY_UPLOAD_TASK_QUEUE): a site worker next to the images')
    .addHelpText('after', example('VMCONVOY_BUCKET=my-staging AWS_REGION=us-east-1 vmconvoy worker --log-format json'))
    .action(async (o: { logFormat?: 'json' | 'pretty'; uploadOnly?: boolean }) => {
      await workerCommand(o, env);
    });

  program
    .command('sim')
    .description('run the EC2 VM-Import simulator (its flags: --port --host --state --access-key --secret-key --region --config)')
    .allowUnknownOption()
    .allowExcessArguments(true)
    .helpOption(false)
    .addHelpText('after', example('vmconvoy sim --port 4566 --state .vmconvoy/sim-state.json'))
    .action(async (_o: unknown, cmd: Command) => {
      await simCommand(cmd.args);
    });

  program
    .command('codec-server')
    .description('decode encrypted payloads for the Temporal Web UI (needs VMCONVOY_CODEC_KEY)')
    .option('--port <n>', 'port', '8888')
    .option('--cors-origin <url>', 'the Web UI origin allowed to call it', 'http://localhost:8233')
    .addHelpText('after', example('temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888 & vmconvoy codec-server'))
    .action(async (o: { port: string; corsOrigin: string }) => {
      const { AesGcmPayloadCodec, codecKeysFromEnv } = await import('../common/temporal/payload-codec');
      const { startCodecServer } = await import('../worker/codec-server');
      const keys = codecKeysFromEnv(env);
      if (!keys) throw new ExitError(1, 'set VMCONVOY_CODEC_KEY (openssl rand -base64 32) to the key the workers use');
      const server = await startCodecServer({ codec: new AesGcmPayloadCodec(keys), port: Number(o.port), corsOrigins: [o.corsOrigin] });
      io.out(`codec server listening on ${server.url}`);
      await untilInterrupted();
    });

  program
    .command('dev')
    .description('run the local environment in the foreground: Temporal dev server + Web UI, S3 server, EC2 simulator, a worker')
    .option('--state-dir <dir>', 'where all state and logs live (kept across restarts)', '.vmconvoy')
    .option('--no-worker', 'do not start a worker (run `vmconvoy worker` yourself)')
    .addHelpText(
      'after',
      `${example('vmconvoy dev', '# then, in another terminal:', 'vmconvoy start examples/inventory.csv --batch demo --wait')}
Ports: Temporal 7233, Web UI 8233, S3 7070, EC2 simulator 4566; a busy port is replaced by a free one
(and said so). <state-dir>/env.json records the endpoints; the other commands use it when
TEMPORAL_ADDRESS, VMCONVOY_BUCKET and AWS_ENDPOINT_URL_* are unset. Ctrl-C stops everything; started
again on the same folder, it continues the batches it had.`
    )
    .action(async (o: { stateDir: string; worker: boolean }) => {
      io.out(`starting the local environment in ${o.stateDir} ...`);
      const local = await devCommand({ stateDir: o.stateDir, worker: o.worker, log: (line) => io.out(p.yellow(line)) });
      const { describeLocalEnv } = await import('../dev/local-env');
      io.out(describeLocalEnv(local.info, local.stateDir));
      void local
        .worker()
        ?.exited.then((code) => {
          if (code !== null && code !== 0) io.err(p.red(`the worker exited with code ${code}; see ${local.stateDir}/worker.log`));
        });
      io.out(p.green(`Ready. Web UI: ${local.info.temporalUiUrl}. Ctrl-C stops everything; starting again continues the batches.`));
      await untilInterrupted();
      io.out('stopping the worker, the simulator, S3 and Temporal ...');
      await local.stop();
      io.out('stopped.');
    });

  return program;
}

function effectiveEnvSafe(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  try {
    return effectiveEnv(env);
  } catch {
    return env;
  }
}

export async function main(argv: string[], baseEnv: NodeJS.ProcessEnv = process.env, io?: Io): Promise<number> {
  const errLine = (text: string): void => (io ? io.err(text) : void process.stderr.write(`${text}\n`));
  try {
    const env = effectiveEnv(baseEnv);
    await buildProgram(env, io ?? defaultIo(env)).parseAsync(argv, { from: 'user' });
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
      const unreachable = unreachableError(effectiveEnvSafe(baseEnv), err);
      errLine(unreachable.message);
      return unreachable.code;
    }
    errLine(`vmconvoy: ${(err as Error).message ?? String(err)}`);
    errLine(baseEnv.VMCONVOY_DEBUG ? String((err as Error).stack) : '(set VMCONVOY_DEBUG=1 to see where it happened)');
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(1)
  );
}
