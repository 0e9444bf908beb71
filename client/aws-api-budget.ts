/**
 * The AWS API request budget, per AWS account and Region: a rate limit, in requests per second, that each
 * account+Region gets on its own. Every EC2-calling activity (ImportInstance, DescribeConversionTasks,
 * validation, cancel) runs on the AWS API task queue with its VM's `<account>/<region>` as fairness key
 * (common/task-queues.ts awsApiFairnessKeyOf), and the budget is that queue's per-fairness-key rate limit.
 * The Temporal server enforces it for each key across all workers and all batches, and it changes live, so
 * an operator can leave headroom in each account's EC2 token buckets for other tools, and two accounts
 * never share one budget. Each of those activities makes one EC2 request (plus the SDK's own retries on
 * throttling), so activities per second ≈ requests per second. Activities without an account (VMs started
 * before accounts, rollback, the account look-up) share the unkeyed budget, of the same size.
 *
 * Temporal 1.29 applies per-key limits only on queues with fairness on (dynamic config
 * matching.enableFairness; deploy/temporal/dynamicconfig/vmconvoy.yaml, dev/services.ts); the server
 * cannot be asked whether it is on, so the README says what a cluster needs.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ExitError } from './errors';

const ACTIVITY_QUEUE = temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;

/**
 * Sets (or with `default`, removes) the budget; returns what the server now holds. It also removes a
 * queue-wide limit: older vmconvoy versions set the budget there, where it capped every account+Region of
 * the queue together.
 */
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
      updateFairnessKeyRateLimitDefault: {
        rateLimit: rate === 'default' ? null : { requestsPerSecond: rate },
        reason,
      },
      updateQueueRateLimit: { rateLimit: null, reason },
    });
  } catch (err) {
    throw new ExitError(
      1,
      `cannot set the AWS API budget on task queue "${taskQueue}": ${(err as Error).message}. ` +
        'It needs a Temporal server with task queue configuration and fairness (1.29 or later, with the dynamic config matching.enableFairness on).'
    );
  }
  return getAwsApiBudget(client, taskQueue);
}

/** The per-account+Region budget in force, or undefined when the queue has none (or the server cannot tell). */
export async function getAwsApiBudget(client: Client, taskQueue: string): Promise<number | undefined> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: ACTIVITY_QUEUE,
      reportConfig: true,
    });
    const rps = res.config?.fairnessKeysRateLimitDefault?.rateLimit?.requestsPerSecond;
    return rps === undefined || rps === null ? undefined : rps;
  } catch {
    return undefined;
  }
}
