/**
 * Removing what an import created: terminate an instance and wait until EC2 says it is terminated, then
 * delete its volume once EC2 shows it detached (DeleteVolume takes only an `available` volume: API
 * reference, DeleteVolume). Used by the rollback (rollback.ts) and by cleanup with `onFail: terminate`.
 *
 * Also the one rule for "changed after vmconvoy stopped it": the record keeps the instance's LaunchTime
 * from when vmconvoy left it stopped (stopStamp). EC2's LaunchTime is the time the instance was last
 * launched (API reference, Instance), so a later start shows as another LaunchTime even when the
 * instance was stopped again; a running or pending instance was started whatever the record says.
 */
import type { EC2Client, Instance, Tag, Volume } from '@aws-sdk/client-ec2';
import { DeleteVolumeCommand, DescribeConversionTasksCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import type { RecordedImport } from '../common/contracts/activity-io';
import { activityLog, heartbeat, sleepMs, throwIfCancelled } from './activity-context';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import { terminateInstance, waitForInstanceState } from './vm-resources';

export interface RemovalTiming {
  /** How long to wait for EC2 to terminate an instance or detach its volume. @default 10 min */
  waitMs?: number;
  /** @default 5 s */
  pollMs?: number;
}

const DEFAULT_WAIT_MS = 10 * 60_000;
const DEFAULT_POLL_MS = 5_000;

/** What the record keeps when vmconvoy leaves an instance stopped. */
export function stopStamp(instance: Instance, now = new Date()): Pick<RecordedImport, 'stoppedAt' | 'launchTime'> {
  return { stoppedAt: now.toISOString(), launchTime: instance.LaunchTime?.toISOString() };
}

/** Why the instance counts as started or changed since vmconvoy stopped it; undefined when it does not. */
export function changedSinceStop(instance: Instance, rec: RecordedImport): string | undefined {
  const state = instance.State?.Name;
  const since = rec.stoppedAt ? ` (vmconvoy stopped it at ${rec.stoppedAt})` : '';
  if (state === 'running' || state === 'pending') return `${state}: started after vmconvoy stopped it${since}`;
  const launched = instance.LaunchTime;
  if (rec.launchTime && launched && launched.getTime() !== Date.parse(rec.launchTime))
    return `launched again at ${launched.toISOString()}${since}`;
  return undefined;
}

/** The value of a tag, from an instance's or a volume's tag list. */
export function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** The conversion task's state as EC2 lists it; undefined when EC2 no longer lists it (tasks go after days). */
export function conversionTaskState(ec2: EC2Client, conversionTaskId: string): Promise<string | undefined> {
  return awsCall(
    { operation: `DescribeConversionTasks ${conversionTaskId}`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [conversionTaskId] }), {
        abortSignal,
      });
      return out.ConversionTasks?.find((t) => t.ConversionTaskId === conversionTaskId)?.State;
    },
    (err) =>
      isAwsError(err, 'InvalidConversionTaskId', 'InvalidConversionTaskId.Malformed') ? { value: undefined } : undefined
  );
}

export function describeVolume(ec2: EC2Client, volumeId: string): Promise<Volume | undefined> {
  return awsCall(
    { operation: `DescribeVolumes ${volumeId}`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal });
      return out.Volumes?.find((v) => v.VolumeId === volumeId);
    },
    (err) => (isAwsError(err, 'InvalidVolume.NotFound') ? { value: undefined } : undefined)
  );
}

/** Terminates the instance and waits until EC2 says it is terminated; false when it did not in time. */
export async function terminateAndWait(ec2: EC2Client, instanceId: string, timing: RemovalTiming): Promise<boolean> {
  await terminateInstance(ec2, instanceId);
  return waitForInstanceState(
    ec2,
    instanceId,
    'terminated',
    timing.waitMs ?? DEFAULT_WAIT_MS,
    timing.pollMs ?? DEFAULT_POLL_MS
  );
}

/**
 * Deletes the volume once it is detached (a terminated instance's volume detaches a moment later). Returns
 * `deleted`, `gone` (EC2 does not know it: deleted before, or with its instance), or `attached` when it is
 * still attached after the wait (to the instance being terminated, or to another one).
 */
export async function deleteVolumeWhenDetached(
  ec2: EC2Client,
  volumeId: string,
  timing: RemovalTiming
): Promise<'deleted' | 'gone' | 'attached'> {
  const deadline = Date.now() + (timing.waitMs ?? DEFAULT_WAIT_MS);
  for (;;) {
    throwIfCancelled();
    const volume = await describeVolume(ec2, volumeId);
    if (!volume || volume.State === 'deleting' || volume.State === 'deleted') return 'gone';
    if (volume.State === 'available') {
      const outcome = await awsCall(
        { operation: `DeleteVolume ${volumeId}`, service: 'EC2' },
        async (abortSignal) => {
          await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }), { abortSignal });
          return 'deleted' as const;
        },
        (err) => {
          if (isAwsError(err, 'InvalidVolume.NotFound')) return { value: 'gone' as const };
          // Attached again between the two calls: look again (and give up at the deadline).
          if (isAwsError(err, 'VolumeInUse')) return { value: 'attached' as const };
          return undefined;
        }
      );
      if (outcome !== 'attached') {
        if (outcome === 'deleted') activityLog.info('volume deleted', { volumeId });
        return outcome;
      }
    }
    if (Date.now() >= deadline) return 'attached';
    heartbeat({ waitingFor: `${volumeId} to detach` });
    await sleepMs(Math.min(timing.pollMs ?? DEFAULT_POLL_MS, Math.max(0, deadline - Date.now())));
  }
}
