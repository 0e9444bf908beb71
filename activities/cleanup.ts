/**
 * Cleanup of one VM: cancel its conversion task if it is still running (failure and cancel paths), then
 * delete every object under the VM's folder (object-keys.ts vmPrefix) and nothing else. Safe to run any
 * number of times. On a failure or cancel path with no known task but an import marker (an ImportInstance
 * whose answer was lost, then the VM was cancelled), the task is looked for by its manifest, so none is
 * left converting.
 *
 * On the failure and cancel paths it also stops the VM's own instance if it runs (a boot check that was
 * interrupted), and keeps the VM's resource record (vm-resources.ts) while a converted instance remains:
 * the next run of the VM adopts or terminates it, and the failed VM's status names it. A failure with
 * `onFail: terminate` (`start --on-fail terminate`) terminates that instance and deletes its volume instead.
 *
 * A completed VM keeps its record too, stamped with when vmconvoy left the instance stopped (and its
 * LaunchTime then): `vmconvoy rollback` removes what a record names, and leaves an instance started since.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { CancelConversionTaskCommand, DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CleanupInput, CleanupResult, RecordedImport } from '../common/contracts/activity-io';
import { activityLog, cancellationSignal, heartbeat } from './activity-context';
import { awsCall, awsFailure } from './aws-call';
import { isAwsError, isNotFound } from './aws-error-codes';
import { deleteVolumeWhenDetached, stopStamp, terminateAndWait } from './ec2-removal';
import { findTaskForManifest, importMayHaveBeenSent, listConversionTasks } from './import-idempotency';
import { manifestKey, resourceRecordKey, vmPrefix } from '../common/object-keys';
import {
  ROOT_DEVICE,
  isBootedImport,
  liveRecordedInstances,
  readResourceRecord,
  stopInstance,
  ownInstance,
  updateResourceRecord,
} from './vm-resources';

export interface CleanupDeps {
  ec2: EC2Client;
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
}

/** Errors meaning "there is nothing (left) to cancel". */
const NOTHING_TO_CANCEL = [
  'DeleteConversionTaskError',
  'InvalidConversionTaskId',
  'InvalidConversionTaskId.Malformed',
  'IncorrectState',
];

export function cancelConversionTask(
  ec2: EC2Client,
  conversionTaskId: string,
  reason: string | undefined
): Promise<boolean> {
  const nothingToCancel = (err: unknown): { value: boolean } | undefined => {
    if (!isAwsError(err, ...NOTHING_TO_CANCEL)) return undefined;
    activityLog.info('conversion task needs no cancelling', { conversionTaskId, reason: (err as Error).name });
    return { value: false };
  };
  return awsCall(
    { operation: `CancelConversionTask ${conversionTaskId}`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [conversionTaskId] }), {
        abortSignal,
      });
      const task = out.ConversionTasks?.find((t) => t.ConversionTaskId === conversionTaskId);
      if (task?.State !== 'active') return false;
      await ec2.send(
        new CancelConversionTaskCommand({
          ConversionTaskId: conversionTaskId,
          ReasonMessage: reason ?? 'cancelled by vmconvoy',
        }),
        { abortSignal }
      );
      activityLog.info('conversion task cancelled', { conversionTaskId });
      return true;
    },
    nothingToCancel
  );
}

/** Deletes every object under the VM's prefix but `keep`; returns how many were deleted. */
export async function deleteVmObjects(
  deps: Omit<CleanupDeps, 'ec2'>,
  loc: CleanupInput,
  keep?: string
): Promise<number> {
  const { s3, bucket } = deps;
  const prefix = vmPrefix(deps.keyPrefix, loc);
  const abortSignal = cancellationSignal();
  const fail = (operation: string) => (err: unknown) => {
    throw awsFailure(err, { operation, bucket, service: 'S3' });
  };
  let deleted = 0;
  let token: string | undefined;
  do {
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal })
      .catch(fail(`listing ${prefix}`));
    // Belt and braces: only keys inside this VM's folder, whatever the server returned.
    const keys = (page.Contents ?? [])
      .map((o) => o.Key)
      .filter((k): k is string => k !== undefined && k.startsWith(prefix) && k !== keep);
    deleted += await deleteKeys(s3, bucket, keys, abortSignal).catch(fail(`deleting objects under ${prefix}`));
    heartbeat({ deleted });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return deleted;
}

async function deleteKeys(
  s3: S3Client,
  bucket: string,
  keys: string[],
  abortSignal: AbortSignal | undefined
): Promise<number> {
  if (keys.length === 0) return 0;
  try {
    const out = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      { abortSignal }
    );
    const errors = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (errors.length > 0) {
      const first = errors[0];
      throw Object.assign(
        new Error(`${errors.length} objects not deleted, e.g. ${first?.Key ?? '?'}: ${first?.Message ?? ''}`),
        { name: first?.Code ?? 'InternalError' }
      );
    }
    return keys.length;
  } catch (err) {
    // Some S3-compatible servers lack DeleteObjects (or its checksum rules): delete one by one.
    if (!isAwsError(err, 'NotImplemented', 'MissingContentMD5', 'InvalidRequest', 'XAmzContentSHA256Mismatch'))
      throw err;
  }
  for (const Key of keys) {
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }), { abortSignal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return keys.length;
}

/** The task an import whose answer was lost created for this VM's manifest, if any. */
async function orphanTaskId(deps: CleanupDeps, input: CleanupInput): Promise<string | undefined> {
  if (!(await importMayHaveBeenSent(deps, input))) return undefined;
  const tasks = await listConversionTasks(
    deps.ec2,
    'DescribeConversionTasks (looking for a task this VM never heard of)',
    { bucket: deps.bucket }
  );
  const task = findTaskForManifest(tasks, deps.bucket, manifestKey(deps.keyPrefix, input));
  if (task?.State === 'completed') {
    // Too late to cancel: EC2 created the instance. It goes into the record, so the next run of the VM
    // adopts or terminates it; until then it stays (stopped) for the operator.
    activityLog.warn('a conversion this VM never heard of completed; its instance stays, recorded', {
      batch: input.batch,
      vm: input.vm,
      conversionTaskId: task.ConversionTaskId,
      instanceId: task.ImportInstance?.InstanceId,
    });
    if (task.ConversionTaskId) {
      await updateResourceRecord(deps, input, {
        add: {
          conversionTaskId: task.ConversionTaskId,
          instanceId: task.ImportInstance?.InstanceId,
          volumeId: task.ImportInstance?.Volumes?.[0]?.Volume?.Id,
          at: new Date().toISOString(),
        },
      });
    }
    return undefined;
  }
  return task?.ConversionTaskId;
}

export async function cleanupVm(deps: CleanupDeps, input: CleanupInput): Promise<CleanupResult> {
  // `reason` is given on the failure and cancel paths only; a completed VM's task is done.
  const failurePath = input.reason !== undefined;
  const taskId = input.cancelConversionTaskId ?? (failurePath ? await orphanTaskId(deps, input) : undefined);
  const cancelledTask = taskId ? await cancelConversionTask(deps.ec2, taskId, input.reason) : false;
  if (!failurePath) {
    // Completed: the record stays, stamped with the moment vmconvoy left the instance stopped: it is what
    // `vmconvoy rollback` removes, and how it tells an instance started since then.
    const kept = await stampStoppedInstances(deps, input);
    const deletedObjects = await deleteVmObjects(
      deps,
      input,
      kept ? resourceRecordKey(deps.keyPrefix, input) : undefined
    );
    activityLog.info('cleanup done', { batch: input.batch, vm: input.vm, deletedObjects, cancelledTask });
    return { deletedObjects, cancelledTask };
  }
  const { stopped, remaining, terminated, volumesLeft } = await settleOwnInstances(deps, input);
  // The record stays while a converted instance (or a volume of one) remains; otherwise it goes with the rest.
  const keep = remaining.length > 0 || volumesLeft ? resourceRecordKey(deps.keyPrefix, input) : undefined;
  const deletedObjects = await deleteVmObjects(deps, input, keep);
  activityLog.info('cleanup done', {
    batch: input.batch,
    vm: input.vm,
    deletedObjects,
    cancelledTask,
    stoppedInstances: stopped,
    remainingInstances: remaining,
  });
  const result: CleanupResult = {
    deletedObjects,
    cancelledTask,
    stoppedInstances: stopped,
    remainingInstances: remaining,
  };
  return input.onFail === 'terminate' ? { ...result, terminatedInstances: terminated } : result;
}

/** Completed path: stamps the record's stopped instances of this VM; true when the record names one. */
async function stampStoppedInstances(deps: CleanupDeps, input: CleanupInput): Promise<boolean> {
  const record = await readResourceRecord(deps, input);
  const live = liveRecordedInstances(record);
  for (const rec of live) {
    const own = await ownInstance(deps.ec2, rec.instanceId!, input);
    const instance = own.gone ? undefined : own.instance;
    if (instance?.State?.Name === 'stopped')
      await updateResourceRecord(deps, input, { add: { ...rec, ...stopStamp(instance) } });
  }
  return live.length > 0;
}

/**
 * Failure and cancel paths: every instance of this VM (the workflow's, and the record's) that runs is
 * stopped; returns those and the converted instances that remain (stopped, for the operator or the next
 * run). With `onFail: terminate` (a failure, not a cancel) a converted instance is terminated instead and
 * its recorded volume deleted. An instance whose conversion did not finish is the conversion's: cancelling
 * the task removes it.
 */
async function settleOwnInstances(
  deps: CleanupDeps,
  input: CleanupInput
): Promise<{ stopped: string[]; remaining: string[]; terminated: string[]; volumesLeft: boolean }> {
  const record = await readResourceRecord(deps, input);
  const ids = new Set<string>(input.instanceId ? [input.instanceId] : []);
  for (const i of liveRecordedInstances(record)) if (i.instanceId) ids.add(i.instanceId);
  const terminate = input.onFail === 'terminate';
  const stopped: string[] = [];
  const remaining: string[] = [];
  const terminated: string[] = [];
  const gone: string[] = [];
  let volumesLeft = false;
  for (const instanceId of ids) {
    const own = await ownInstance(deps.ec2, instanceId, input);
    if (own.gone) gone.push(instanceId);
    const instance = own.gone ? undefined : own.instance;
    if (!instance) continue;
    const converted = (instance.BlockDeviceMappings ?? []).some((m) => m.DeviceName === ROOT_DEVICE);
    const rec = record?.imports.find((i) => i.instanceId === instanceId);
    if (terminate && converted) {
      if (await terminateAndWait(deps.ec2, instanceId, { waitMs: 5 * 60_000 })) {
        terminated.push(instanceId);
        gone.push(instanceId);
        volumesLeft ||= !(await deleteRecordedVolume(deps, input, rec));
      } else remaining.push(instanceId);
      continue;
    }
    if (isBootedImport(instance)) {
      await stopInstance(deps.ec2, instanceId);
      stopped.push(instanceId);
    }
    if (converted) {
      remaining.push(instanceId);
      // LaunchTime does not change on a stop: the stamp holds whether stopping has finished yet or not.
      if (rec) await updateResourceRecord(deps, input, { add: { ...rec, ...stopStamp(instance) } });
    }
  }
  if (gone.length > 0 && record) await updateResourceRecord(deps, input, { goneInstances: gone });
  return { stopped, remaining, terminated, volumesLeft };
}

/** onFail terminate: the terminated instance's recorded volume goes too; false when it is still there. */
async function deleteRecordedVolume(deps: CleanupDeps, input: CleanupInput, rec: RecordedImport | undefined) {
  if (!rec?.volumeId) return true;
  const outcome = await deleteVolumeWhenDetached(deps.ec2, rec.volumeId, { waitMs: 2 * 60_000 });
  if (outcome === 'attached') return false;
  await updateResourceRecord(deps, input, { add: { ...rec, volumeDeleted: true } });
  return true;
}
