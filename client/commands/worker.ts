/** `vmconvoy worker`: the worker process (worker/main.ts), configured from the environment. */
import type { CommandSpec } from './command';

export interface WorkerCommandOptions {
  logFormat?: 'json' | 'pretty';
  uploadOnly?: boolean;
}

export async function workerCommand(opts: WorkerCommandOptions, env: NodeJS.ProcessEnv): Promise<void> {
  const { runWorkerProcess } = await import('../../worker/main');
  await runWorkerProcess({ logFormat: opts.logFormat, uploadOnly: opts.uploadOnly }, env);
}

export const workerSpec: CommandSpec<WorkerCommandOptions> = {
  name: 'worker',
  summary:
    'run a worker: polls the task queues and runs the workflows and activities (start as many as you like, on many hosts)',
  options: [
    { flags: '--log-format <format>', description: 'log lines as JSON or human-readable', choices: ['json', 'pretty'] },
    {
      flags: '--upload-only',
      description: 'serve only the upload task queue (VMCONVOY_UPLOAD_TASK_QUEUE): a site worker next to the images',
    },
  ],
  examples: ['VMCONVOY_BUCKET=my-staging AWS_REGION=us-east-1 vmconvoy worker --log-format json'],
  run: ({ opts }, { env }) => workerCommand(opts, env),
};
