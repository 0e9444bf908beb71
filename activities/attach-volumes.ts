/**
 * The data volumes onto the imported instance: recorded in the VM's resource record first (so cleanup and
 * rollback find them whatever happens next), attached in inventory order at /dev/sdf, /dev/sdg, ... while
 * the instance is stopped, then validated (count, sizes, each attached where it should be) and tagged
 * like the boot volume. Safe to run again: a volume already attached at its device is left as it is.
 */
import type { EC2Client, Volume } from '@aws-sdk/client-ec2';
import { AttachVolumeCommand, CreateTagsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { AttachDataVolumesInput, AttachDataVolumesResult } from '../common/contracts/data-disks';
import { dataDiskDevice } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { activityLog, heartbeat, sleepMs, throwIfCancelled } from './activity-context';
import { awsCall } from './aws-call';
import { vmTags } from './validate';
import type { RecordStore } from './vm-resources';
import { updateResourceRecord } from './vm-resources';

export interface AttachDeps extends RecordStore {
  ec2: EC2Client;
  /** Between looks at attachments still `attaching`. @default 2000 */
  pollIntervalMs?: number;
  /** How long attachments may stay `attaching`. @default 5 minutes */
  attachWaitMs?: number;
}

function call<T>(operation: string, fn: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  return awsCall({ operation, service: 'EC2' }, fn);
}

function mismatch(instanceId: string, problems: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `The data volumes of instance ${instanceId} do not match the inventory: ${problems.join('; ')}. Inspect them in the EC2 console; fix the row or its disks and run the VM again.`,
    FailureType.ValidationFailed
  );
}

async function describe(ec2: EC2Client, ids: string[]): Promise<Volume[]> {
  const out = await call(`DescribeVolumes ${ids.join(' ')}`, (abortSignal) =>
    ec2.send(new DescribeVolumesCommand({ VolumeIds: ids }), { abortSignal })
  );
  return out.Volumes ?? [];
}

export async function attachDataVolumes(
  deps: AttachDeps,
  input: AttachDataVolumesInput
): Promise<AttachDataVolumesResult> {
  const { ec2 } = deps;
  const { instanceId } = input;
  const vmLocation = { batch: input.batch, vm: input.vm, namespace: input.namespace };
  for (const v of input.volumes) {
    await updateResourceRecord(deps, vmLocation, {
      add: {
        conversionTaskId: v.conversionTaskId,
        volumeId: v.volumeId,
        dataDisk: v.disk,
        at: new Date().toISOString(),
      },
    });
  }
  const ids = input.volumes.map((v) => v.volumeId);
  const before = await describe(ec2, ids);
  for (const v of input.volumes) {
    const device = dataDiskDevice(v.disk);
    const volume = before.find((x) => x.VolumeId === v.volumeId);
    const attachment = volume?.Attachments?.find((a) => a.State !== 'detached');
    if (attachment?.InstanceId === instanceId && attachment.Device === device) continue; // an earlier attempt did it
    if (attachment)
      throw mismatch(instanceId, [
        `${v.volumeId} is attached to ${attachment.InstanceId ?? '?'} at ${attachment.Device ?? '?'}`,
      ]);
    if (volume?.State !== 'available') {
      throw ApplicationFailure.retryable(
        `data volume ${v.volumeId} is ${volume?.State ?? 'not listed yet'}, not available; asking again`,
        FailureType.AwsUnavailable
      );
    }
    await call(`AttachVolume ${v.volumeId} ${instanceId} ${device}`, (abortSignal) =>
      ec2.send(new AttachVolumeCommand({ VolumeId: v.volumeId, InstanceId: instanceId, Device: device }), {
        abortSignal,
      })
    );
    activityLog.info('data volume attached', { batch: input.batch, vm: input.vm, volumeId: v.volumeId, device });
  }

  // Attachments settle from `attaching` to `attached`.
  const deadline = Date.now() + (deps.attachWaitMs ?? 5 * 60_000);
  let after: Volume[];
  for (;;) {
    throwIfCancelled();
    after = await describe(ec2, ids);
    const attaching = after.filter((v) => v.Attachments?.some((a) => a.State === 'attaching'));
    if (attaching.length === 0 || Date.now() > deadline) break;
    heartbeat({ waitingFor: `${attaching.map((v) => v.VolumeId).join(', ')} to attach` });
    await sleepMs(deps.pollIntervalMs ?? 2000);
  }

  const problems: string[] = [];
  const attached: AttachDataVolumesResult['attached'] = [];
  for (const v of input.volumes) {
    const device = dataDiskDevice(v.disk);
    const volume = after.find((x) => x.VolumeId === v.volumeId);
    const attachment = volume?.Attachments?.find((a) => a.InstanceId === instanceId);
    if (!volume) problems.push(`data volume ${v.volumeId} does not exist`);
    else if (volume.Size !== v.volumeSizeGib)
      problems.push(`data volume ${v.volumeId} is ${volume.Size ?? '?'} GiB, expected ${v.volumeSizeGib}`);
    else if (attachment?.State !== 'attached' || attachment.Device !== device)
      problems.push(
        `data volume ${v.volumeId} is ${attachment ? `${attachment.State ?? '?'} at ${attachment.Device ?? '?'}` : 'not attached'}, expected attached at ${device}`
      );
    else attached.push({ disk: v.disk, volumeId: v.volumeId, device, sizeGib: volume.Size });
  }
  if (problems.length > 0) throw mismatch(instanceId, problems);

  const tags = vmTags({ batch: input.batch, vm: input.vm, spec: input.spec });
  await call(`CreateTags on ${ids.join(' ')}`, (abortSignal) =>
    ec2.send(new CreateTagsCommand({ Resources: ids, Tags: tags }), { abortSignal })
  );
  return {
    attached,
    checks: [
      `${attached.length} data volume(s) attached: ${attached.map((a) => `${a.volumeId} (${a.sizeGib} GiB) at ${a.device}`).join(', ')}`,
      `tagged ${tags.length} tags on each data volume`,
    ],
  };
}
