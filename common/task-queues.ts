/**
 * Task-queue routing, in one place: the queues a deployment has, and which activities each one serves.
 * The worker registers exactly these activities on each queue (worker/create-worker.ts) and the workflows'
 * activity proxies are typed by the same lists (workflows/activity-profiles.ts), so a workflow cannot
 * schedule an activity on a queue whose workers do not run it. Sandbox-safe: workflows import it.
 *
 *   main      <taskQueue>           every workflow and every activity
 *   control   <taskQueue>-control   fleet and conversion-quota workflows, and their own activities
 *   awsApi    <taskQueue>-aws-api   the activities that call EC2; its per-fairness-key rate limit is the API
 *                                   budget of each AWS account+Region (awsApiFairnessKeyOf)
 *   upload    (optional)            pre-flight, conversion and upload, on the hosts that can read the images
 *   site      <upload>-site-<name>  a VM's pre-flight and upload when its inventory row names a site
 */

/** The activities each queue other than the main one serves (the main queue serves them all). */
export const ACTIVITIES_BY_QUEUE = {
  control: ['loadInventoryPage', 'vmWorkflowStates', 'workflowRunStates', 'writeBatchReport', 'sendNotification'],
  awsApi: [
    'importInstance',
    'describeConversion',
    'validateInstance',
    'cleanupVm',
    'scanRollback',
    'rollbackVm',
    'onlineChecks',
    'resolveAwsAccount',
    'importVolume',
    'attachDataVolumes',
    'cleanupDataVolumes',
  ],
  upload: ['preflightImage', 'uploadImage', 'convertImage', 'discardScratch', 'preflightDataDisk', 'checkVmScratch'],
} as const;

export type QueueRole = keyof typeof ACTIVITIES_BY_QUEUE;
export type ActivityNameOn<R extends QueueRole> = (typeof ACTIVITIES_BY_QUEUE)[R][number];

/** The names that configure the queues (worker and CLI read the same environment variables). */
export interface TaskQueueNames {
  taskQueue: string;
  uploadTaskQueue?: string;
  awsApiTaskQueue?: string;
  controlTaskQueue?: string;
}

/**
 * The task queue every EC2-calling activity runs on. Temporal rate-limits a task queue on the server, for
 * all its workers together; the AWS API budget is the queue's per-fairness-key limit
 * (client/aws-api-budget.ts), and each VM's EC2 calls carry its account+Region as fairness key, so every
 * account+Region gets the whole budget and two of them never share one.
 */
export function awsApiTaskQueueOf(names: Pick<TaskQueueNames, 'taskQueue' | 'awsApiTaskQueue'>): string {
  return names.awsApiTaskQueue ?? `${names.taskQueue}-aws-api`;
}

/**
 * The fairness key of a VM's EC2-calling activities on the AWS API queue: `<account>/<region>`. The server
 * applies the AWS API budget to each key on its own (matching.enableFairness must be on), so the budget is
 * per AWS account and Region, whichever batch, worker or deployment the calls come from. Temporal caps a
 * key at 64 bytes: 12 digits, a slash and a Region name fit.
 */
export function awsApiFairnessKeyOf(aws: { accountId: string; region: string }): string {
  return `${aws.accountId}/${aws.region}`;
}

/**
 * The task queue of the workflows that schedule others: the fleet (one per batch) and the conversion quota
 * (one per account+region). Each is a single workflow whose tasks run one after another, on behalf of
 * every VM; on the main queue they waited behind the tasks of hundreds of VM workflows. A worker serves
 * this queue with a workflow thread of its own.
 */
export function controlTaskQueueOf(names: Pick<TaskQueueNames, 'taskQueue' | 'controlTaskQueue'>): string {
  return names.controlTaskQueue ?? `${names.taskQueue}-control`;
}

/**
 * The upload queue of one site (the inventory's `site` column): a VM of that site pre-flights and uploads
 * there, served by `vmconvoy worker --site <site>` on the site's hosts, with that site's image roots.
 * `uploadQueue` is the batch's upload queue, or its main queue when it has none. Workflows, workers and
 * the CLI all name site queues through this function, so they cannot disagree.
 */
export function siteTaskQueueOf(uploadQueue: string, site: string): string {
  return `${uploadQueue}-site-${site}`;
}

/** The queue a worker or the CLI derives site queues from: the upload queue, else the main queue. */
export function siteBaseQueueOf(names: Pick<TaskQueueNames, 'taskQueue' | 'uploadTaskQueue'>): string {
  return names.uploadTaskQueue ?? names.taskQueue;
}

/** The subset of `activities` a queue of this role serves. */
export function activitiesFor<R extends QueueRole, A extends Record<ActivityNameOn<R>, unknown>>(
  role: R,
  activities: A
): Pick<A, ActivityNameOn<R>> {
  const out = {} as Pick<A, ActivityNameOn<R>>;
  for (const name of ACTIVITIES_BY_QUEUE[role] as readonly ActivityNameOn<R>[]) out[name] = activities[name];
  return out;
}
