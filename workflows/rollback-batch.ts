/**
 * rollbackBatchWorkflow: undoes what a batch created in EC2, VM by VM (activities/rollback.ts). A workflow,
 * so it shows in the Web UI and a worker that dies mid-way leaves it to another worker: each VM's activity
 * is safe to run again (what is gone stays gone), and VMs already done are not asked again on replay.
 * Its ID (common/workflow-ids.ts rollbackWorkflowId) makes a second start attach to a running one.
 */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
// Type-only: activities run in the worker.
import type { Activities } from '../activities';
import type { RollbackBatchInput, RollbackItem, RollbackResult } from '../common/contracts/rollback';
import { withUnrecorded } from '../common/contracts/rollback';
import type { ActivityNameOn } from '../common/task-queues';
import { NON_RETRYABLE_TYPES, SHORT_HEARTBEAT_TIMEOUT } from './activity-profiles';

/** VMs rolled back at once: each waits minutes for EC2 to terminate its instance. */
const VMS_AT_ONCE = 4;

export async function rollbackBatchWorkflow(input: RollbackBatchInput): Promise<RollbackResult> {
  const { awsApiTaskQueue, targets, ...target } = input;
  const ec2 = proxyActivities<Pick<Activities, ActivityNameOn<'awsApi'>>>({
    taskQueue: awsApiTaskQueue,
    // rollbackVm waits up to 10 minutes for a termination and as long for the volume to detach.
    startToCloseTimeout: '25 minutes',
    scheduleToCloseTimeout: '2 hours',
    heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
    summary: 'roll back',
  });
  let items: RollbackItem[] = [];
  const unrecorded: RollbackItem[] = [];
  // Each account+Region the batch used in turn (its records sit in that Region's bucket); without targets,
  // the worker's own, with exactly the commands a rollback always had.
  for (const aws of targets ?? [undefined]) {
    const where = aws ? { ...target, aws } : target;
    const place = aws
      ? ` in ${aws.profile ? `profile ${aws.profile}, ` : ''}${aws.region ?? 'the default Region'}`
      : '';
    const scan = await ec2.scanRollback(where);
    let done = 0;
    setCurrentDetails(`rolling back ${scan.vms.length} VMs of batch ${input.batch}${place}`);
    for (let i = 0; i < scan.vms.length; i += VMS_AT_ONCE) {
      const group = scan.vms.slice(i, i + VMS_AT_ONCE);
      const results = await Promise.all(
        group.map(({ vm, legacyLayout }) => ec2.rollbackVm({ ...where, vm, legacyLayout, execute: true }))
      );
      for (const r of results) items.push(...r.items);
      done += group.length;
      setCurrentDetails(`rolled back ${done} of ${scan.vms.length} VMs of batch ${input.batch}${place}`);
    }
    unrecorded.push(...scan.unrecorded);
  }
  items = withUnrecorded(items, unrecorded);
  return {
    batch: input.batch,
    vm: input.vm,
    force: input.force,
    executed: true,
    items,
    actions: items.filter((i) => i.action).length,
  };
}
