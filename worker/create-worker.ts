/**
 * Builds vmconvoy's workers on a connection: the main task queue runs every workflow and activity; the
 * control queue runs the fleet and conversion-quota workflows (and their activities) with a workflow
 * thread of their own; the AWS API queue runs the EC2-calling activities under the server's rate limit
 * (the API budget); an optional upload task queue (or one site's, `vmconvoy worker --site`) runs pre-flight
 * and upload only, on the hosts that can read the disk images.
 */
import type { ScratchConfig } from '../activities/disk-image/scratch';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import path from 'node:path';
import { createActivities } from '../activities';
import type { AwsConfig } from '../common/config';
import { activitiesFor } from '../common/task-queues';
import { attemptCapInterceptor } from './attempt-cap';

export interface CreateWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** Also serve this queue (pre-flight and upload activities). */
  uploadTaskQueue?: string;
  /** Also serve this queue with the EC2-calling activities (its rate limit is the AWS API budget). */
  awsApiTaskQueue?: string;
  /** Also serve this queue: the fleet and quota workflows, in a worker (and workflow thread) of their own. */
  controlTaskQueue?: string;
  /** Serve only the upload queue (a site worker that runs no workflows). */
  uploadOnly?: boolean;
  aws: AwsConfig;
  imageRoots?: string[];
  /** A prebuilt bundle (tests build one per process); default: bundle workflows/ at start. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  maxConcurrentActivityTaskExecutions?: number;
  /** Payload encryption (worker/payload-codec.ts); must match the clients'. */
  dataConverter?: DataConverter;
  /** Signs `start --notify` events (VMCONVOY_NOTIFY_SECRET). */
  notifySecret?: string;
  /** The `start --notify` receivers' URLs by name (VMCONVOY_NOTIFY_URL[_<NAME>]). */
  notifyReceivers?: Record<string, string>;
  /** What histories record as the worker of each task (default: the SDK's `pid@host`). */
  identity?: string;
  /** Where images are converted before upload; default DEFAULT_SCRATCH_DIR, no cap. */
  scratch?: ScratchConfig;
}

export async function createWorkers(opts: CreateWorkersOptions): Promise<Worker[]> {
  const activities = createActivities({
    config: opts.aws,
    imageRoots: opts.imageRoots,
    notifySecret: opts.notifySecret,
    notifyReceivers: opts.notifyReceivers,
    scratch: opts.scratch,
  });
  const workers: Worker[] = [];
  // What every worker of this process shares: the connection, the codec, the cap on unexpected attempts.
  const common = {
    connection: opts.connection,
    namespace: opts.namespace,
    dataConverter: opts.dataConverter,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 50,
    interceptors: { activity: [attemptCapInterceptor] },
    ...(opts.identity ? { identity: opts.identity } : {}),
  };
  if (!opts.uploadOnly) {
    // One bundle for both workflow workers (bundling takes seconds of CPU), logged as Worker.create would.
    const workflowBundle =
      opts.workflowBundle ??
      (await bundleWorkflowCode({
        workflowsPath: path.join(__dirname, '..', 'workflows', 'index.ts'),
        logger: Runtime.instance().logger,
        // Failures raised by workflow code are encoded like payloads when a codec is configured.
        failureConverterPath: opts.dataConverter?.failureConverterPath,
      }));
    const queues: Array<{ taskQueue: string; activities: Partial<typeof activities> }> = [
      { taskQueue: opts.taskQueue, activities },
    ];
    // The fleet's and the quota's own activities run where they run (common/task-queues.ts: control).
    if (opts.controlTaskQueue && opts.controlTaskQueue !== opts.taskQueue)
      queues.push({ taskQueue: opts.controlTaskQueue, activities: activitiesFor('control', activities) });
    for (const queue of queues) {
      workers.push(await Worker.create({ ...common, ...queue, workflowBundle }));
    }
  }
  if (!opts.uploadOnly && opts.awsApiTaskQueue && opts.awsApiTaskQueue !== opts.taskQueue) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: opts.awsApiTaskQueue,
        activities: activitiesFor('awsApi', activities),
      })
    );
  }
  if (opts.uploadTaskQueue && opts.uploadTaskQueue !== opts.taskQueue) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: opts.uploadTaskQueue,
        activities: activitiesFor('upload', activities),
      })
    );
  }
  return workers;
}

/** Runs the workers until one stops (shutdown signal or fatal error); stops the others then. */
export async function runWorkers(workers: Worker[]): Promise<void> {
  try {
    await Promise.race(workers.map((w) => w.run()));
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  }
}
