/**
 * `vmconvoy dev`: the local environment in the foreground (dev/local-env.ts): Temporal dev server with its
 * Web UI, the S3 server, the EC2 simulator and a worker, all state under one folder. Ctrl-C stops it;
 * started again on the same folder, it continues the batches it had.
 */
import type { LocalEnv } from '../../dev/local-env';
import type { CommandSpec } from './command';

export interface DevOptions {
  stateDir: string;
  worker: boolean;
  log: (line: string) => void;
}

export async function devCommand(opts: DevOptions): Promise<LocalEnv> {
  const { startLocalEnv } = await import('../../dev/local-env');
  return startLocalEnv({ stateDir: opts.stateDir, worker: opts.worker, log: opts.log });
}

/** Resolves on the first Ctrl-C or SIGTERM. */
export function untilInterrupted(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

export const devSpec: CommandSpec<{ stateDir: string; worker: boolean }> = {
  name: 'dev',
  summary:
    'run the local environment in the foreground: Temporal dev server + Web UI, S3 server, EC2 simulator, a worker',
  options: [
    {
      flags: '--state-dir <dir>',
      description: 'where all state and logs live (kept across restarts)',
      default: '.vmconvoy',
    },
    { flags: '--no-worker', description: 'do not start a worker (run `vmconvoy worker` yourself)' },
  ],
  examples: [
    'vmconvoy dev',
    '# then, in another terminal:',
    'vmconvoy start examples/inventory.csv --batch demo --wait',
  ],
  notes: `Ports: Temporal 7233, Web UI 8233, S3 7070, EC2 simulator 4566; a busy port is replaced by a free one
(and said so). <state-dir>/env.json records the endpoints; the other commands use it when
TEMPORAL_ADDRESS, VMCONVOY_BUCKET and AWS_ENDPOINT_URL_* are unset. Ctrl-C stops everything; started
again on the same folder, it continues the batches it had.`,
  async run({ opts }, { printer }) {
    const p = printer.paint;
    printer.line(`starting the local environment in ${opts.stateDir} ...`);
    const local = await devCommand({ ...opts, log: (line) => printer.line(p.yellow(line)) });
    const { describeLocalEnv } = await import('../../dev/local-env');
    printer.line(describeLocalEnv(local.info, local.stateDir));
    void local.worker()?.exited.then((code) => {
      if (code !== null && code !== 0)
        printer.note(p.red(`the worker exited with code ${code}; see ${local.stateDir}/worker.log`));
    });
    const ready = `Ready. Web UI: ${local.info.temporalUiUrl}. Ctrl-C stops everything; starting again continues the batches.`;
    printer.line(p.green(ready));
    await untilInterrupted();
    printer.line('stopping the worker, the simulator, S3 and Temporal ...');
    await local.stop();
    printer.line('stopped.');
  },
};
