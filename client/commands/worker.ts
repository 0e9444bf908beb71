/** `vmconvoy worker`: the worker process (worker/main.ts), configured from the environment. */
export interface WorkerCommandOptions {
  logFormat?: 'json' | 'pretty';
  uploadOnly?: boolean;
}

export async function workerCommand(opts: WorkerCommandOptions, env: NodeJS.ProcessEnv): Promise<void> {
  const { runWorkerProcess } = await import('../../worker/main');
  await runWorkerProcess({ logFormat: opts.logFormat, uploadOnly: opts.uploadOnly }, env);
}
