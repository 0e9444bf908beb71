/**
 * ImportVolume for one data disk, exactly as idempotent as ImportInstance (import-idempotency.ts): the disk
 * has its own folder under the VM's (`<vm>/disk-N/`), so its own manifest and import marker; a retried or
 * later attempt first looks for the task an earlier one created for that manifest (a lost answer) and
 * adopts it, and the request goes out once, through a client that never retries on its own.
 *
 * The volume is made in the instance's availability zone (AttachVolume needs the same zone), read from
 * DescribeInstances. What it creates or adopts is recorded at once in the disk's own resource record
 * (`<vm>/disk-N/resources.json`: one writer per disk, so concurrent disks never overwrite each other); the
 * VM's record gets every data volume when they are attached, or when the VM is cleaned up
 * (data-volume-cleanup.ts), so cleanup and rollback find them.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand, ImportVolumeCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { ImportVolumeInput, ImportVolumeResult } from '../common/contracts/data-disks';
import { FailureType } from '../common/failures';
import { activityLog, currentContext } from './activity-context';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import type { Ec2ImportDeps } from './import-instance';
import { findEarlierImport, recordImportSend, recordSendRefused } from './import-idempotency';
import { urlExpiry } from './url-expiry';
import { updateResourceRecord } from './vm-resources';

/** The instance's availability zone; an instance EC2 does not list yet is worth another attempt. */
export async function instanceZone(ec2: EC2Client, instanceId: string): Promise<string> {
  const zone = await awsCall(
    { operation: `DescribeInstances ${instanceId} (its zone, for ImportVolume)`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal });
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId)?.Placement
        ?.AvailabilityZone;
    },
    (err) => (isAwsError(err, 'InvalidInstanceID.NotFound') ? { value: undefined } : undefined)
  );
  if (!zone) {
    throw ApplicationFailure.retryable(
      `EC2 does not list instance ${instanceId} yet (eventual consistency); asking again.`,
      FailureType.AwsUnavailable
    );
  }
  return zone;
}

/** Failure types of an answer that created nothing for sure (as import-instance.ts). */
const REFUSALS: readonly string[] = [
  FailureType.AwsThrottled,
  FailureType.ConversionQuotaExceeded,
  FailureType.AwsInvalidParameter,
  FailureType.AwsRequestFailed,
  FailureType.AwsAuth,
];

async function recorded(
  deps: Ec2ImportDeps,
  input: ImportVolumeInput,
  result: ImportVolumeResult
): Promise<ImportVolumeResult> {
  await updateResourceRecord(deps, input, {
    add: {
      conversionTaskId: result.conversionTaskId,
      volumeId: result.volumeId,
      dataDisk: input.disk,
      runId: currentContext()?.info.workflowExecution?.runId,
      at: new Date().toISOString(),
    },
  });
  return result;
}

export async function importVolume(deps: Ec2ImportDeps, input: ImportVolumeInput): Promise<ImportVolumeResult> {
  const availabilityZone = await instanceZone(deps.ec2, input.instanceId);
  const earlier = await findEarlierImport(deps, input);
  if (earlier.adopt) {
    return recorded(deps, input, {
      conversionTaskId: earlier.adopt.conversionTaskId,
      volumeId: earlier.adopt.volumeId,
      availabilityZone,
      adopted: true,
    });
  }
  const expiry = await urlExpiry(deps.presigner, input.validUntil);
  const manifestUrl = await deps.presigner.presign(
    new GetObjectCommand({ Bucket: deps.bucket, Key: input.manifestKey }),
    expiry.expiresInSeconds
  );
  await recordImportSend(deps, input, earlier.sentBefore, manifestUrl);
  const created = await awsCall(
    { operation: `ImportVolume (data disk ${input.disk})`, service: 'EC2', bucket: deps.bucket },
    async (abortSignal) => {
      const { ConversionTask: task } = await deps.ec2NoRetry.send(
        new ImportVolumeCommand({
          AvailabilityZone: availabilityZone,
          Description: input.description,
          Image: { Format: input.format, Bytes: input.imageBytes, ImportManifestUrl: manifestUrl },
          Volume: { Size: input.volumeSizeGib },
        }),
        { abortSignal }
      );
      if (!task?.ConversionTaskId) {
        throw ApplicationFailure.retryable(
          'ImportVolume returned no conversion task; retrying (the retry adopts the task if EC2 created one).',
          FailureType.AwsUnavailable
        );
      }
      return { conversionTaskId: task.ConversionTaskId, volumeId: task.ImportVolume?.Volume?.Id };
    }
  ).catch(async (err: unknown) => {
    if (err instanceof ApplicationFailure && REFUSALS.includes(err.type ?? ''))
      await recordSendRefused(deps, input, manifestUrl);
    throw err;
  });
  activityLog.info('data disk conversion task created', {
    batch: input.batch,
    vm: input.vmLocation.vm,
    disk: input.disk,
    ...created,
  });
  return recorded(deps, input, { ...created, availabilityZone, adopted: false });
}
