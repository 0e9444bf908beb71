/**
 * `vmconvoy dev`: the local environment in the foreground (dev/local-env.ts): Temporal dev server with its
 * Web UI, the S3 server, the EC2 simulator and a worker, all state under one folder. Ctrl-C stops it;
 * started again on the same folder, it continues the batches it had.
 */
import type { LocalEnv } from '../../dev/local-env';

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
