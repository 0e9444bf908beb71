/**
 * Cleanup of one VM: cancel its conversion task if it is still running (failure and cancel paths), then
 * delete every object under `<prefix><batch>/<vm>/` and nothing else. Safe to run any number of times.
 * On a failure or cancel path with no known task but an import marker (an ImportInstance whose answer was
 * lost, then the VM was cancelled), the task is looked for by its manifest, so none is left converting.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { CancelConversionTaskCommand, DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CleanupInput, CleanupResult } from '../common/contracts/migration';
import { activityLog, cancellationSignal, heartbeat } from './activity-context';
import { awsCall, awsFailure } from './aws-call';
import { isAwsError, isNotFound } from './aws-error-codes';
import { findTaskForManifest, importMayHaveBeenSent, listConversionTasks } from './import-idempotency';
import { manifestKey, vmPrefix } from '../common/object-keys';

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

/** Deletes every object under the VM's prefix; returns how many were deleted. */
export async function deleteVmObjects(deps: Omit<CleanupDeps, 'ec2'>, loc: CleanupInput): Promise<number> {
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
      .filter((k): k is string => k !== undefined && k.startsWith(prefix));
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
    // Too late to cancel: EC2 created the instance. Say so; deleting it is the operator's decision.
    activityLog.warn('a conversion this VM never heard of completed; its instance stays', {
      batch: input.batch,
      vm: input.vm,
      conversionTaskId: task.ConversionTaskId,
      instanceId: task.ImportInstance?.InstanceId,
    });
    return undefined;
  }
  return task?.ConversionTaskId;
}

export async function cleanupVm(deps: CleanupDeps, input: CleanupInput): Promise<CleanupResult> {
  // `reason` is given on the failure and cancel paths only; a completed VM's task is done.
  const taskId =
    input.cancelConversionTaskId ?? (input.reason !== undefined ? await orphanTaskId(deps, input) : undefined);
  const cancelledTask = taskId ? await cancelConversionTask(deps.ec2, taskId, input.reason) : false;
  const deletedObjects = await deleteVmObjects(deps, input);
  activityLog.info('cleanup done', { batch: input.batch, vm: input.vm, deletedObjects, cancelledTask });
  return { deletedObjects, cancelledTask };
}
