/**
 * Before a VM imports, what its earlier runs left in EC2 (the resource record, vm-resources.ts) is settled:
 * one intact instance is adopted, every other one of this VM is terminated. "Intact": its conversion task is
 * still listed as completed (the workflow then sees it completed at once), it is stopped with its root
 * volume attached, it matches the inventory row as it is now, and it was converted from the very bytes this
 * run uploaded (same image fingerprint). Anything else (the image or the row changed, the instance runs or
 * was changed by hand) is not what this run would import: it goes, and a fresh import replaces it.
 */
import type { ConversionTask, EC2Client, Instance } from '@aws-sdk/client-ec2';
import { DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import type { ImportInstanceInput, ImportInstanceResult, RecordedImport } from '../common/contracts/activity-io';
import { activityLog } from './activity-context';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import { instanceMismatches } from './validate';
import type { RecordStore } from './vm-resources';
import {
  ROOT_DEVICE,
  liveRecordedInstances,
  readResourceRecord,
  ownInstance,
  terminateInstance,
  updateResourceRecord,
} from './vm-resources';

function describeTask(ec2: EC2Client, conversionTaskId: string): Promise<ConversionTask | undefined> {
  return awsCall(
    { operation: `DescribeConversionTasks ${conversionTaskId}`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [conversionTaskId] }), {
        abortSignal,
      });
      return out.ConversionTasks?.find((t) => t.ConversionTaskId === conversionTaskId);
    },
    // EC2 lists a task for days only: an older one can no longer be adopted (the workflow could not see it end).
    (err) =>
      isAwsError(err, 'InvalidConversionTaskId', 'InvalidConversionTaskId.Malformed') ? { value: undefined } : undefined
  );
}

/** Adopts one intact instance of an earlier run and terminates the others; returns the adopted import. */
export async function settleEarlierRuns(
  deps: RecordStore & { ec2: EC2Client },
  input: ImportInstanceInput,
  fingerprint: string | undefined
): Promise<ImportInstanceResult | undefined> {
  const record = await readResourceRecord(deps, input);
  const earlier = liveRecordedInstances(record);
  if (earlier.length === 0) return undefined;
  let adopted: ImportInstanceResult | undefined;
  const gone: string[] = [];
  // Newest first: the latest import is the one worth adopting.
  for (const rec of [...earlier].reverse()) {
    const instanceId = rec.instanceId!;
    const own = await ownInstance(deps.ec2, instanceId, input);
    if (own.gone) gone.push(instanceId);
    const instance = own.gone ? undefined : own.instance;
    if (!instance) continue;
    const rootVolumeId = instance.BlockDeviceMappings?.find((m) => m.DeviceName === ROOT_DEVICE)?.Ebs?.VolumeId;
    if (!adopted && (await intact(deps.ec2, rec, instance, input, fingerprint))) {
      adopted = {
        conversionTaskId: rec.conversionTaskId,
        instanceId,
        volumeId: rootVolumeId ?? rec.volumeId,
        adopted: true,
      };
      activityLog.info('adopted the instance an earlier run of this VM imported', { ...location(input), instanceId });
      continue;
    }
    await terminateInstance(deps.ec2, instanceId);
    activityLog.warn('terminated the instance an earlier run of this VM left', {
      ...location(input),
      instanceId,
      volumeId: rootVolumeId ?? rec.volumeId,
    });
    gone.push(instanceId);
  }
  if (gone.length > 0) await updateResourceRecord(deps, input, { goneInstances: gone });
  return adopted;
}

function location(input: ImportInstanceInput): { batch: string; vm: string } {
  return { batch: input.batch, vm: input.vm };
}

async function intact(
  ec2: EC2Client,
  rec: RecordedImport,
  instance: Instance,
  input: ImportInstanceInput,
  fingerprint: string | undefined
): Promise<boolean> {
  if (!fingerprint || rec.imageFingerprint !== fingerprint) return false;
  if (instanceMismatches(instance, input.spec).length > 0) return false;
  return (await describeTask(ec2, rec.conversionTaskId))?.State === 'completed';
}
