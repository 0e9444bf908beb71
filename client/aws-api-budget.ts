/**
 * The AWS API request budget: a rate limit, in requests per second, on the task queue that runs every
 * EC2-calling activity (ImportInstance, DescribeConversionTasks, validation, cancel). The Temporal server
 * enforces it across all workers and all batches on that queue, and it changes live, so an operator can
 * leave headroom in the account's EC2 token buckets for other tools. Each of those activities makes one
 * EC2 request (plus the SDK's own retries on throttling), so activities per second ≈ requests per second.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ExitError } from './errors';

const ACTIVITY_QUEUE = temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;

/** Sets (or with `default`, removes) the budget; returns what the server now holds. */
export async function setAwsApiBudget(
  client: Client,
  taskQueue: string,
  rate: number | 'default',
  reason: string
): Promise<number | undefined> {
  try {
    await client.workflowService.updateTaskQueueConfig({
      namespace: client.options.namespace,
      identity: client.options.identity,
      taskQueue,
      taskQueueType: ACTIVITY_QUEUE,
      updateQueueRateLimit: { rateLimit: rate === 'default' ? null : { requestsPerSecond: rate }, reason },
    });
  } catch (err) {
    throw new ExitError(
      1,
      `cannot set the AWS API budget on task queue "${taskQueue}": ${(err as Error).message}. ` +
        'It needs a Temporal server with task queue configuration (1.28 or later; on self-hosted clusters the dynamic config frontend.enableUpdateTaskQueueConfig).'
    );
  }
  return getAwsApiBudget(client, taskQueue);
}

/** The budget in force, or undefined when the queue has none (or the server cannot tell). */
export async function getAwsApiBudget(client: Client, taskQueue: string): Promise<number | undefined> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: ACTIVITY_QUEUE,
      reportConfig: true,
    });
    const rps = res.config?.queueRateLimit?.rateLimit?.requestsPerSecond;
    return rps === undefined || rps === null ? undefined : rps;
  } catch {
    return undefined;
  }
}
