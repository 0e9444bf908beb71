/**
 * Which of a batch's task queues no worker polls right now. The CLI names the queues in the batch's
 * settings from its own environment and each worker serves the queues of its own: when the two disagree
 * (or no worker runs), VMs wait on a queue nobody serves, silently. `start` says so instead.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { VmconvoyConfig } from '../common/config';
import { awsApiTaskQueueOf, controlTaskQueueOf } from '../common/task-queues';

const { TASK_QUEUE_TYPE_WORKFLOW: WORKFLOW, TASK_QUEUE_TYPE_ACTIVITY: ACTIVITY } = temporal.api.enums.v1.TaskQueueType;

interface QueueUse {
  name: string;
  type: typeof WORKFLOW | typeof ACTIVITY;
  /** What waits there, in operator words. */
  what: string;
}

function queuesOf(config: VmconvoyConfig): QueueUse[] {
  const { temporal: names } = config;
  const queues: QueueUse[] = [
    { name: controlTaskQueueOf(names), type: WORKFLOW, what: 'the batch itself (fleet workflow)' },
    { name: names.taskQueue, type: WORKFLOW, what: 'the VM workflows' },
    { name: awsApiTaskQueueOf(names), type: ACTIVITY, what: 'every EC2 call (import, polling, validation)' },
  ];
  if (names.uploadTaskQueue)
    queues.push({ name: names.uploadTaskQueue, type: ACTIVITY, what: 'pre-flight and upload' });
  return queues;
}

/** One warning per queue without a poller; empty when every queue is served (or the server cannot tell). */
export async function unservedQueueWarnings(client: Client, config: VmconvoyConfig): Promise<string[]> {
  const warnings: string[] = [];
  for (const queue of queuesOf(config)) {
    try {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: queue.name },
        taskQueueType: queue.type,
      });
      if ((res.pollers ?? []).length === 0)
        warnings.push(
          `no worker polls task queue "${queue.name}": ${queue.what} will wait until one does. ` +
            `Start \`vmconvoy worker\` with the same VMCONVOY_TASK_QUEUE (and VMCONVOY_*_TASK_QUEUE) settings as this command.`
        );
    } catch {
      // An older server or missing permission: no warning rather than a wrong one.
    }
  }
  return warnings;
}
