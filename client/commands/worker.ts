/** `vmconvoy worker`: the worker process (worker/main.ts), configured from the environment. */
import { ExitError } from '../errors';
import type { CommandSpec } from './command';

export interface WorkerCommandOptions {
  logFormat?: 'json' | 'pretty';
  uploadOnly?: boolean;
  allowAnyPath?: boolean;
  site?: string;
}

export async function workerCommand(opts: WorkerCommandOptions, env: NodeJS.ProcessEnv): Promise<void> {
  const { runWorkerProcess, WorkerRefused } = await import('../../worker/main');
  try {
    await runWorkerProcess(
      { logFormat: opts.logFormat, uploadOnly: opts.uploadOnly, allowAnyPath: opts.allowAnyPath, site: opts.site },
      env
    );
  } catch (err) {
    // A configuration the worker refuses: the explanation alone, exit code 1 (invalid input).
    if (err instanceof WorkerRefused) throw new ExitError(1, err.message);
    throw err;
  }
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
    {
      flags: '--site <name>',
      description:
        "serve only this site's upload queue: pre-flight and upload of the inventory rows whose site column names it, with this host's VMCONVOY_IMAGE_ROOTS (or VMCONVOY_SITE)",
    },
    {
      flags: '--allow-any-path',
      description:
        'run without VMCONVOY_IMAGE_ROOTS: inventories may then name any file the worker can read (trusted inventories only; or VMCONVOY_ALLOW_ANY_PATH=1)',
    },
  ],
  examples: [
    'VMCONVOY_BUCKET=my-staging AWS_REGION=us-east-1 VMCONVOY_IMAGE_ROOTS=/srv/images vmconvoy worker --log-format json',
    'VMCONVOY_IMAGE_ROOTS=/datacenter-2/images vmconvoy worker --site dc2',
  ],
  run: ({ opts }, { env }) => workerCommand(opts, env),
};
