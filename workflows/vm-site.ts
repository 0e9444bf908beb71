/**
 * Sites (issue 21): a VM of a site pre-flights, converts and uploads on that site's queue, where its image
 * is; every other VM on the batch's upload queue. The site shows in the VM's status.
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import type { MigrateVmInput } from '../common/contracts/migration';
import { siteTaskQueueOf } from '../common/task-queues';
import type { VmStatusTracker } from './vm-status';
import { VM_SITE_QUEUE_PATCH } from './versions';

/** The queue the VM's image work runs on (undefined: the batch's default upload queue). */
export function uploadQueueOf(
  spec: MigrateVmInput['spec'],
  uploadTaskQueue: string | undefined,
  tracker: VmStatusTracker
): string | undefined {
  const siteQueue =
    spec.site && patched(VM_SITE_QUEUE_PATCH)
      ? siteTaskQueueOf(uploadTaskQueue ?? workflowInfo().taskQueue, spec.site)
      : undefined;
  if (spec.site && siteQueue) tracker.update({ site: { name: spec.site, taskQueue: siteQueue } });
  return siteQueue ?? uploadTaskQueue;
}
