/**
 * The baseline's worker process, built like vmconvoy's (worker/create-worker.ts): same SDK, same activity
 * slot count, bundled at start. With `--same-work` it also serves vmconvoy's activities, configured from
 * the environment as `vmconvoy worker` is.
 *
 *   node --import tsx bench/baseline/worker.ts <address> <taskQueue> [--same-work]
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import path from 'node:path';
import { createActivities } from '../../activities';
import { loadConfig } from '../../common/config';
import { baselineActivities } from './activities';

function vmconvoyActivities(): ReturnType<typeof createActivities> {
  const config = loadConfig(process.env);
  return createActivities({ config: config.aws, imageRoots: config.imageRoots });
}

async function main(): Promise<void> {
  const [address, taskQueue] = process.argv.slice(2) as [string, string];
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: path.join(__dirname, 'workflows.ts'),
    activities: process.argv.includes('--same-work')
      ? { ...baselineActivities, ...vmconvoyActivities() }
      : baselineActivities,
    maxConcurrentActivityTaskExecutions: 50,
  });
  console.log('baseline worker started');
  await worker.run();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
