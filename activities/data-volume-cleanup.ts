/**
 * Cleanup of a VM's data disks on its failure and cancel paths, before the VM's own cleanup deletes the
 * disks' folders: every data-disk import the records name (the VM's, and each disk's own) or a disk's
 * marker says may exist (an ImportVolume whose answer was lost) is cancelled while active (EC2 then
 * removes its volume), a completed one's volume deleted once it is not attached, and a volume attached to
 * an instance that remains (kept stopped for inspection) is left with it and recorded in the VM's record,
 * so `retry` and `rollback` find it. Safe to run any number of times; run again after the VM's cleanup
 * terminated its instance (`onFail: terminate`), it deletes the volumes that detached.
 */
import type { RecordedImport } from '../common/contracts/activity-io';
import type { DataVolumeCleanupInput, DataVolumeCleanupResult } from '../common/contracts/data-disks';
import { dataDiskLocation } from '../common/contracts/data-disks';
import { manifestKey } from '../common/object-keys';
import { activityLog, heartbeat } from './activity-context';
import type { CleanupDeps } from './cleanup';
import { cancelConversionTask } from './cleanup';
import { conversionTaskState, deleteVolumeWhenDetached, describeVolume } from './ec2-removal';
import { findTaskForManifest, importMayHaveBeenSent, listConversionTasks } from './import-idempotency';
import { readResourceRecord, updateResourceRecord } from './vm-resources';

/** What the records and markers say of the data disks' imports, one entry per task. */
async function dataImports(deps: CleanupDeps, input: DataVolumeCleanupInput): Promise<RecordedImport[]> {
  const vmLocation = { batch: input.batch, vm: input.vm, namespace: input.namespace };
  const byTask = new Map<string, RecordedImport>();
  const add = (i: RecordedImport): void => {
    if (i.dataDisk !== undefined) byTask.set(i.conversionTaskId, { ...byTask.get(i.conversionTaskId), ...i });
  };
  for (const i of (await readResourceRecord(deps, vmLocation))?.imports ?? []) add(i);
  let tasks: Awaited<ReturnType<typeof listConversionTasks>> | undefined;
  for (let disk = 1; disk <= input.disks; disk++) {
    const loc = dataDiskLocation(vmLocation, disk);
    const own = (await readResourceRecord(deps, loc))?.imports ?? [];
    for (const i of own) add({ ...i, dataDisk: disk });
    if (own.length > 0 || !(await importMayHaveBeenSent(deps, loc))) continue;
    // A send whose answer was lost: the task, if EC2 made one, is found by the disk's manifest.
    tasks ??= await listConversionTasks(deps.ec2, 'DescribeConversionTasks (data disks never heard of)', {
      bucket: deps.bucket,
    });
    const task = findTaskForManifest(tasks, deps.bucket, manifestKey(deps.keyPrefix, loc));
    if (task?.ConversionTaskId)
      add({
        conversionTaskId: task.ConversionTaskId,
        volumeId: task.ImportVolume?.Volume?.Id,
        dataDisk: disk,
        at: new Date().toISOString(),
      });
  }
  return [...byTask.values()];
}

export async function cleanupDataVolumes(
  deps: CleanupDeps,
  input: DataVolumeCleanupInput
): Promise<DataVolumeCleanupResult> {
  const vmLocation = { batch: input.batch, vm: input.vm, namespace: input.namespace };
  const result: DataVolumeCleanupResult = { cancelledTasks: [], deletedVolumes: [], keptVolumes: [] };
  for (const rec of await dataImports(deps, input)) {
    heartbeat({ dataDisk: rec.dataDisk });
    const state = await conversionTaskState(deps.ec2, rec.conversionTaskId);
    if (state === 'active' || state === 'cancelling') {
      if (state === 'active' && (await cancelConversionTask(deps.ec2, rec.conversionTaskId, input.reason)))
        result.cancelledTasks.push(rec.conversionTaskId);
      // A cancelled import removes its volume itself (API reference, CancelConversionTask).
      await updateResourceRecord(deps, vmLocation, { add: { ...rec, volumeDeleted: true } });
      continue;
    }
    if (!rec.volumeId || rec.volumeDeleted) continue;
    const volume = await describeVolume(deps.ec2, rec.volumeId);
    const attachedTo = volume?.Attachments?.find((a) => a.State !== 'detached')?.InstanceId;
    if (!volume || volume.State === 'deleted' || volume.State === 'deleting') {
      await updateResourceRecord(deps, vmLocation, { add: { ...rec, volumeDeleted: true } });
    } else if (attachedTo) {
      // With an instance that stays (kept stopped for inspection): it goes with that instance.
      result.keptVolumes.push(rec.volumeId);
      await updateResourceRecord(deps, vmLocation, { add: rec });
    } else {
      const outcome = await deleteVolumeWhenDetached(deps.ec2, rec.volumeId, { waitMs: 2 * 60_000 });
      if (outcome === 'attached') result.keptVolumes.push(rec.volumeId);
      else result.deletedVolumes.push(rec.volumeId);
      await updateResourceRecord(deps, vmLocation, { add: { ...rec, volumeDeleted: outcome !== 'attached' } });
    }
  }
  activityLog.info('data disks cleaned up', { batch: input.batch, vm: input.vm, ...result });
  return result;
}
