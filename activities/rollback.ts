/**
 * Rollback of a batch: what vmconvoy created for each VM, from the VM's resource record (vm-resources.ts),
 * checked against EC2 as it is now, and with `execute` removed: open conversion tasks cancelled, instances
 * terminated, then their volumes deleted. Only what a record names is touched; an instance tagged for the
 * batch that no record names is reported and never touched (a tag is easy to copy, a record is ours).
 * An instance whose tags name another VM, or that was started or changed since vmconvoy stopped it
 * (ec2-removal.ts changedSinceStop), is left alone unless forced (foreign ones always are).
 *
 * Safe to run any number of times: what is gone is reported as gone, and the record remembers what was
 * removed; a second rollback changes nothing.
 */
import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ObjectLocation, RecordedImport } from '../common/contracts/activity-io';
import type {
  RollbackInput,
  RollbackItem,
  RollbackScan,
  RollbackVmInput,
  RollbackVmResult,
} from '../common/contracts/rollback';
import { vmPrefix } from '../common/object-keys';
import { activityLog } from './activity-context';
import { awsCall } from './aws-call';
import { cancelConversionTask } from './cleanup';
import type { RemovalTiming } from './ec2-removal';
import {
  changedSinceStop,
  conversionTaskState,
  deleteVolumeWhenDetached,
  describeVolume,
  tagValue,
  terminateAndWait,
} from './ec2-removal';
import type { RecordStore } from './vm-resources';
import { describeInstance, readResourceRecord, taggedForVm, updateResourceRecord } from './vm-resources';

export interface RollbackDeps extends RecordStore {
  ec2: EC2Client;
  timing?: RemovalTiming;
}

const BATCH_TAG = 'vmconvoy:batch';
const VM_TAG = 'vmconvoy:vm';
const RECORD_KEY = /^([A-Za-z0-9._-]+)\/resources\.json$/;

/** The folder holding the batch's VM folders (the parent of vmPrefix). */
function batchPrefix(keyPrefix: string, batch: string, namespace: string | undefined): string {
  return vmPrefix(keyPrefix, { batch, vm: '', namespace }).slice(0, -1);
}

async function recordedVms(deps: RecordStore, prefix: string): Promise<string[]> {
  const vms: string[] = [];
  let token: string | undefined;
  do {
    const page = await awsCall({ operation: `listing ${prefix}`, bucket: deps.bucket, service: 'S3' }, (abortSignal) =>
      deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }), {
        abortSignal,
      })
    );
    for (const o of page.Contents ?? []) {
      const vm = o.Key?.startsWith(prefix) ? RECORD_KEY.exec(o.Key.slice(prefix.length))?.[1] : undefined;
      if (vm) vms.push(vm);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return vms;
}

/** Instances tagged for the batch (and VM) that EC2 still lists as not terminated. */
async function taggedInstances(ec2: EC2Client, batch: string, vm: string | undefined): Promise<Instance[]> {
  const filters = [
    { Name: `tag:${BATCH_TAG}`, Values: [batch] },
    ...(vm ? [{ Name: `tag:${VM_TAG}`, Values: [vm] }] : []),
  ];
  const found: Instance[] = [];
  let token: string | undefined;
  do {
    const page = await awsCall({ operation: `DescribeInstances tagged ${BATCH_TAG}=${batch}`, service: 'EC2' }, (s) =>
      ec2.send(new DescribeInstancesCommand({ Filters: filters, NextToken: token }), { abortSignal: s })
    );
    for (const i of page.Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
      if (i.State?.Name !== 'terminated' && tagValue(i.Tags, BATCH_TAG) === batch) found.push(i);
    }
    token = page.NextToken;
  } while (token);
  return found;
}

/**
 * The VMs of the batch that have a record (under the namespace, and in the layout from before it), and
 * the instances tagged for the batch that none of those records names.
 */
export async function scanRollback(deps: RollbackDeps, input: RollbackInput): Promise<RollbackScan> {
  const namespaced = input.namespace
    ? await recordedVms(deps, batchPrefix(deps.keyPrefix, input.batch, input.namespace))
    : [];
  const legacy = await recordedVms(deps, batchPrefix(deps.keyPrefix, input.batch, undefined));
  const vms = [
    ...namespaced.map((vm) => ({ vm, legacyLayout: false })),
    ...legacy.filter((vm) => !namespaced.includes(vm)).map((vm) => ({ vm, legacyLayout: true })),
  ]
    .filter((v) => input.vm === undefined || v.vm === input.vm)
    .sort((a, b) => a.vm.localeCompare(b.vm));
  const recorded = new Set<string>();
  for (const { vm, legacyLayout } of vms) {
    const record = await readResourceRecord(deps, locationOf(input, vm, legacyLayout));
    for (const i of record?.imports ?? []) if (i.instanceId) recorded.add(i.instanceId);
  }
  const unrecorded = (await taggedInstances(deps.ec2, input.batch, input.vm))
    .filter((i) => i.InstanceId && !recorded.has(i.InstanceId))
    .map((i): RollbackItem => ({
      vm: tagValue(i.Tags, VM_TAG) ?? '?',
      kind: 'instance',
      id: i.InstanceId!,
      state: i.State?.Name ?? 'unknown',
      skip: 'unrecorded',
      detail: 'tagged for this batch, but no record of vmconvoy names it: never touched',
    }));
  return { vms, unrecorded };
}

function locationOf(input: RollbackInput, vm: string, legacyLayout: boolean | undefined): ObjectLocation {
  return legacyLayout ? { batch: input.batch, vm } : { batch: input.batch, vm, namespace: input.namespace };
}

/** One import's resources as they are now, and what the rollback does to each. */
interface ImportPlan {
  rec: RecordedImport;
  task?: RollbackItem;
  instance?: RollbackItem;
  volume?: RollbackItem;
}

/** The VM's instances as the plans so far found them: which the record names, which stay (foreign, changed). */
interface VmInstances {
  recorded: ReadonlySet<string>;
  kept: Set<string>;
}

async function planImport(
  deps: RollbackDeps,
  loc: ObjectLocation,
  rec: RecordedImport,
  force: boolean,
  vmInstances: VmInstances = { recorded: new Set(), kept: new Set() }
): Promise<ImportPlan> {
  const vm = loc.vm;
  const plan: ImportPlan = { rec };
  const taskState = await conversionTaskState(deps.ec2, rec.conversionTaskId);
  const open = taskState === 'active';
  if (open || taskState === 'cancelling') {
    plan.task = { vm, kind: 'conversion-task', id: rec.conversionTaskId, state: taskState };
    if (open) plan.task.action = 'cancel';
    else plan.task.skip = 'gone';
  }
  let instanceKept = false;
  if (rec.instanceId) {
    const instance = await describeInstance(deps.ec2, rec.instanceId);
    const state = instance?.State?.Name ?? 'not found';
    const item: RollbackItem = { vm, kind: 'instance', id: rec.instanceId, state };
    const changed = instance ? changedSinceStop(instance, rec) : undefined;
    if (!instance || state === 'terminated') item.skip = 'gone';
    else if (plan.task) item.skip = 'with-task';
    else if (!taggedForVm(instance, loc)) {
      item.skip = 'foreign';
      item.detail = `tagged for ${tagValue(instance.Tags, BATCH_TAG) ?? '?'}/${tagValue(instance.Tags, VM_TAG) ?? '?'}`;
    } else if (changed && !force) {
      item.skip = 'changed';
      item.detail = `${changed}; left alone (--force terminates it)`;
    } else {
      item.action = 'terminate';
      if (changed) item.detail = `${changed}; terminated because of --force`;
    }
    instanceKept = item.skip === 'foreign' || item.skip === 'changed';
    if (instanceKept) vmInstances.kept.add(rec.instanceId);
    plan.instance = item;
  }
  if (rec.volumeId) {
    const volume = await describeVolume(deps.ec2, rec.volumeId);
    const state = volume?.State ?? 'not found';
    const item: RollbackItem = { vm, kind: 'volume', id: rec.volumeId, state };
    const attachedTo = volume?.Attachments?.find((a) => a.State !== 'detached')?.InstanceId;
    const volumeBatch = tagValue(volume?.Tags, BATCH_TAG);
    const volumeVm = tagValue(volume?.Tags, VM_TAG);
    if (!volume || state === 'deleting' || state === 'deleted') item.skip = 'gone';
    else if (plan.task) item.skip = 'with-task';
    else if (instanceKept) item.skip = 'kept-with-instance';
    // A data volume (issue 19) is attached to the VM's own instance: it goes once that instance is terminated.
    else if (rec.dataDisk !== undefined && attachedTo && vmInstances.kept.has(attachedTo))
      item.skip = 'kept-with-instance';
    else if (
      attachedTo &&
      attachedTo !== rec.instanceId &&
      !(rec.dataDisk !== undefined && vmInstances.recorded.has(attachedTo))
    ) {
      item.skip = 'attached-elsewhere';
      item.detail = `attached to ${attachedTo}, which no record names`;
    } else if (
      (volumeBatch !== undefined || volumeVm !== undefined) &&
      (volumeBatch !== loc.batch || volumeVm !== vm)
    ) {
      item.skip = 'foreign';
      item.detail = `tagged for ${volumeBatch ?? '?'}/${volumeVm ?? '?'}`;
    } else item.action = 'delete';
    plan.volume = item;
  }
  return plan;
}

/** Cancels, terminates, deletes what the plan says; marks in the record what is gone. */
async function executeImport(deps: RollbackDeps, loc: ObjectLocation, plan: ImportPlan): Promise<void> {
  const { rec } = plan;
  const timing = deps.timing ?? {};
  if (plan.task?.action === 'cancel') {
    // Cancelling removes the task's instance and volume (API reference, CancelConversionTask).
    await cancelConversionTask(deps.ec2, rec.conversionTaskId, 'rolled back by vmconvoy');
    await updateResourceRecord(deps, loc, { add: { ...rec, gone: true, volumeDeleted: true } });
    return;
  }
  let instanceGone = plan.instance === undefined || plan.instance.skip === 'gone';
  if (plan.instance?.action === 'terminate') {
    instanceGone = await terminateAndWait(deps.ec2, plan.instance.id, timing);
    if (instanceGone) await updateResourceRecord(deps, loc, { goneInstances: [plan.instance.id] });
    else {
      plan.instance.detail = 'EC2 did not finish terminating it in time; run the rollback again';
      if (plan.volume?.action) Object.assign(plan.volume, { action: undefined, skip: 'timed-out' });
    }
  }
  if (instanceGone && plan.instance?.skip === 'gone' && !rec.gone)
    await updateResourceRecord(deps, loc, { goneInstances: [plan.instance.id] });
  if (plan.volume?.action === 'delete') {
    const outcome = await deleteVolumeWhenDetached(deps.ec2, plan.volume.id, timing);
    if (outcome === 'attached') {
      Object.assign(plan.volume, { action: undefined, skip: 'timed-out', detail: 'still attached; run again' });
      return;
    }
    if (outcome === 'gone') Object.assign(plan.volume, { action: undefined, skip: 'gone' });
    const latest = (await readResourceRecord(deps, loc))?.imports.find(
      (i) => i.conversionTaskId === rec.conversionTaskId
    );
    await updateResourceRecord(deps, loc, { add: { ...(latest ?? rec), volumeDeleted: true } });
  }
}

/** One VM: what its record names, as EC2 shows it now, and (with `execute`) removed. */
export async function rollbackVm(deps: RollbackDeps, input: RollbackVmInput): Promise<RollbackVmResult> {
  const loc = locationOf(input, input.vm, input.legacyLayout);
  const record = await readResourceRecord(deps, loc);
  const plans: ImportPlan[] = [];
  const recorded = new Set((record?.imports ?? []).flatMap((i) => (i.instanceId ? [i.instanceId] : [])));
  const vmInstances: VmInstances = { recorded, kept: new Set() };
  // Instances first, data volumes after (the record's order changes as entries are updated): a data volume's
  // plan needs to know whether its instance stays, and it can go only once that instance is terminated.
  const imports = record?.imports ?? [];
  const ordered = [
    ...imports.filter((i) => i.dataDisk === undefined),
    ...imports.filter((i) => i.dataDisk !== undefined),
  ];
  for (const rec of ordered) plans.push(await planImport(deps, loc, rec, input.force, vmInstances));
  if (input.execute) {
    for (const plan of plans) await executeImport(deps, loc, plan);
    activityLog.info('VM rolled back', { batch: input.batch, vm: input.vm });
  }
  const items = plans.flatMap((p) => [p.task, p.instance, p.volume].filter((i): i is RollbackItem => !!i));
  return { vm: input.vm, items };
}
