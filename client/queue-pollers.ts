/**
 * Which of a batch's task queues no worker polls right now. The CLI names the queues in the batch's
 * settings from its own environment and each worker serves the queues of its own: when the two disagree
 * (or no worker runs), VMs wait on a queue nobody serves, silently. `start` says so instead.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { VmconvoyConfig } from '../common/config';
import { awsApiTaskQueueOf, controlTaskQueueOf, siteBaseQueueOf, siteTaskQueueOf } from '../common/task-queues';

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

/**
 * Whether any worker polls `taskQueue` for activity tasks: true or false, or undefined when the server
 * cannot tell (an older server, a missing permission). The server lists the pollers seen in the last
 * few minutes, so a worker that just stopped still counts for a while.
 */
export async function activityQueueHasPollers(client: Client, taskQueue: string): Promise<boolean | undefined> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: ACTIVITY,
    });
    return (res.pollers ?? []).length > 0;
  } catch {
    return undefined;
  }
}

/** What a VM of a site whose queue no worker polls waits for, in `status` and `start`'s words. */
export function siteWaitingText(site: string): string {
  return `waiting for a worker of site ${site}`;
}

/** The sites an inventory's rows name, with their number of VMs. */
export function sitesOf(rows: ReadonlyArray<{ spec: { site?: string } }>): Map<string, number> {
  const sites = new Map<string, number>();
  for (const { spec } of rows) if (spec.site) sites.set(spec.site, (sites.get(spec.site) ?? 0) + 1);
  return sites;
}

/**
 * One warning per site of the inventory (`sites`: site → its number of VMs) whose queue no worker polls:
 * those VMs wait at pre-flight until `vmconvoy worker --site <site>` runs.
 */
export async function unservedSiteWarnings(
  client: Client,
  config: VmconvoyConfig,
  sites: ReadonlyMap<string, number>
): Promise<string[]> {
  const warnings: string[] = [];
  for (const [site, vms] of [...sites].sort(([a], [b]) => a.localeCompare(b))) {
    const queue = siteTaskQueueOf(siteBaseQueueOf(config.temporal), site);
    if ((await activityQueueHasPollers(client, queue)) === false)
      warnings.push(
        `no worker of site "${site}" polls task queue "${queue}": its ${vms} VM${vms === 1 ? '' : 's'} will wait at pre-flight (${siteWaitingText(site)}). ` +
          `Start \`vmconvoy worker --site ${site}\` on a host of that site, with its VMCONVOY_IMAGE_ROOTS.`
      );
  }
  return warnings;
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
