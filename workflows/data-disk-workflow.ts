/**
 * One data disk's child workflow, `<vm workflow ID>/disk-N` (issue 19): converted on the site worker when
 * EC2 does not take its format as it is (convert-on-site.ts; scratch folder `<vm>/disk-N/`), uploaded into
 * its folder inside the VM's, its own manifest and conversion slot, ImportVolume into the instance's zone
 * (activities/import-volume.ts) and the wait for its conversion. The VM workflow's side is data-disks.ts.
 */
import {
  ApplicationFailure,
  CancellationScope,
  defineSignal,
  getExternalWorkflowHandle,
  patched,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ObjectLocation } from '../common/contracts/activity-io';
import type { DataDiskPreflight, ImportVolumeResult } from '../common/contracts/data-disks';
import { dataDiskLocation, dataDiskSource } from '../common/contracts/data-disks';
import type { DataVolumeStatus, MigrationSettings, QuotaRef, VmStatus } from '../common/contracts/migration';
import { dataDiskDevice } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { importActivities, mainQueueActivities, uploadActivities } from './activity-profiles';
import { acquireConversionSlot, releaseConversionSlot } from './conversion-slot';
import type { SentImage } from './convert-on-site';
import { convertOnSite, discardScratchOnSite } from './convert-on-site';
import { waitForConversion } from './conversion-wait';
import { VM_DATA_DISK_REIMPORT_PATCH } from './versions';
import { errorType } from './vm-outcome';

/** A child's progress, to its VM workflow (status, report and the Web UI show it). */
export const dataDiskProgressSignal = defineSignal<[DataVolumeStatus]>('dataDiskProgress');

export interface DataDiskWorkflowInput {
  vmLocation: ObjectLocation;
  found: DataDiskPreflight;
  settings: MigrationSettings;
  uploadQueue?: string;
  quota?: QuotaRef;
  instanceId: string;
  deadline: number;
  description: string;
  parentWorkflowId: string;
}

export interface DataDiskWorkflowResult {
  disk: number;
  conversionTaskId: string;
  volumeId: string;
  volumeSizeGib: number;
}

export async function importDataDiskWorkflow(input: DataDiskWorkflowInput): Promise<DataDiskWorkflowResult> {
  const { found, settings, deadline } = input;
  const loc = dataDiskLocation(input.vmLocation, found.disk);
  const progress: DataVolumeStatus = {
    disk: found.disk,
    device: dataDiskDevice(found.disk),
    source: dataDiskSource(found.ref),
    bytesTotal: found.imageBytes,
    phase: 'Uploading',
  };
  const report = async (patch: Partial<DataVolumeStatus>): Promise<void> => {
    Object.assign(progress, patch);
    // Status only: a VM workflow that already ended has nothing to show it in.
    await getExternalWorkflowHandle(input.parentWorkflowId)
      .signal(dataDiskProgressSignal, { ...progress })
      .catch(() => undefined);
  };
  let holdsSlot = false;
  /** Set once the disk's conversion on the site is scheduled: its scratch folder goes when the disk ends. */
  let scratchUsed = false;
  try {
    // --- formats (issue 19): a qcow2, VHDX, sparse or flat VMDK disk is converted on the site, as the boot disk.
    let sent: SentImage = {
      image: found.ref.image,
      imageBytes: found.imageBytes,
      imageIdentity: found.imageIdentity,
      imageOffset: found.imageOffset,
      containerBytes: found.containerBytes,
    };
    if (found.conversion) {
      scratchUsed = true;
      // Its scratch folder is `<vm>/disk-N/` inside the VM's (dataDiskLocation): the VM's discard takes it too.
      const sink = { update: (patch: { bytesTotal?: number }) => void Object.assign(progress, patch) };
      sent = await convertOnSite(loc, found.ref.image, found, settings, sink, input.uploadQueue);
      await report({ bytesTotal: sent.imageBytes });
    }
    // --- end formats
    await uploadActivities(input.uploadQueue, settings.deadlineSeconds, settings.uploadHeartbeatSeconds).uploadImage({
      ...loc,
      ...sent,
      partSizeBytes: settings.partSizeBytes,
      concurrency: settings.uploadConcurrency,
    });
    if (scratchUsed) {
      await discardScratchOnSite(loc, settings, input.uploadQueue);
      scratchUsed = false;
    }
    const slotRequest = input.quota ? { quota: input.quota, workflowId: workflowInfo().workflowId } : undefined;
    const validUntil = new Date(deadline).toISOString();
    const manifestInput = {
      ...loc,
      format: found.format,
      imageBytes: sent.imageBytes,
      volumeSizeGib: found.volumeSizeGib,
      partSizeBytes: settings.partSizeBytes,
      validUntil,
    };
    const manifest = await mainQueueActivities('write the data disk manifest', settings).writeManifest({
      ...manifestInput,
      conversionSlot: slotRequest,
    });
    if (input.quota) {
      await report({ phase: 'WaitingForSlot' });
      holdsSlot = await acquireConversionSlot(input.quota, deadline, true);
      if (!holdsSlot)
        throw ApplicationFailure.nonRetryable(
          `No conversion slot for data disk ${found.disk} before the VM deadline`,
          FailureType.DeadlineExceeded
        );
    }
    // AWS sometimes cancels a conversion for its own reasons ("AWS initiated task cancellation"): as for the
    // boot disk (migrate-vm.ts), a fresh ImportVolume with fresh URLs, at most settings.conversionRetries
    // times. It is a new task, not the cancelled one adopted: import-idempotency.ts adopts a cancelled task
    // only within the activity execution that sent it.
    let created: ImportVolumeResult | undefined;
    let done: Awaited<ReturnType<typeof waitForConversion>> | undefined;
    for (let attempt = 1; !done; attempt++) {
      await report({ phase: 'Importing' });
      created = await importVolumeWithQuotaWait(settings, deadline, {
        ...loc,
        vmLocation: input.vmLocation,
        disk: found.disk,
        instanceId: input.instanceId,
        format: found.format,
        imageBytes: sent.imageBytes,
        volumeSizeGib: found.volumeSizeGib,
        manifestKey: manifest.manifestKey,
        validUntil,
        description: input.description,
        listingWaitSeconds: settings.importListingWaitSeconds,
      });
      await report({ phase: 'Converting', conversionTaskId: created.conversionTaskId, volumeId: created.volumeId });
      const status = { ...progress, percent: 0, warnings: [], retries: 0 } as unknown as VmStatus;
      const tracker = { status, update: (patch: Partial<VmStatus>) => void Object.assign(status, patch) };
      try {
        done = await waitForConversion(created.conversionTaskId, sent.imageBytes, settings, deadline, tracker);
      } catch (err) {
        // A child of older code failed here: patched() keeps its history's end as it was.
        if (errorType(err) !== FailureType.ConversionInterrupted || attempt > settings.conversionRetries) throw err;
        if (!patched(VM_DATA_DISK_REIMPORT_PATCH)) throw err;
        await mainQueueActivities('rewrite the data disk manifest', settings).writeManifest(manifestInput);
      }
    }
    if (holdsSlot && input.quota) {
      await releaseConversionSlot(input.quota.workflowId);
      holdsSlot = false;
    }
    const volumeId = done.volumeId ?? created!.volumeId ?? '';
    await report({ phase: 'Available', volumeId, sizeGib: found.volumeSizeGib });
    return {
      disk: found.disk,
      conversionTaskId: created!.conversionTaskId,
      volumeId,
      volumeSizeGib: found.volumeSizeGib,
    };
  } catch (err) {
    // The VM workflow cancels what the task made (cleanupDataVolumes); the slot is this run's to give back.
    await CancellationScope.nonCancellable(async () => {
      if (scratchUsed) await discardScratchOnSite(loc, settings, input.uploadQueue).catch(() => undefined);
      if (holdsSlot && input.quota) await releaseConversionSlot(input.quota.workflowId);
      await report({ phase: 'Failed' });
    });
    throw err;
  }
}

/** ImportVolume; on ResourceLimitExceeded wait and ask again, as the boot disk's ImportInstance does. */
async function importVolumeWithQuotaWait(
  settings: MigrationSettings,
  deadline: number,
  input: Parameters<ReturnType<typeof importActivities>['importVolume']>[0]
): Promise<ImportVolumeResult> {
  for (;;) {
    try {
      return await importActivities(settings).importVolume(input);
    } catch (err) {
      if (errorType(err) !== FailureType.ConversionQuotaExceeded) throw err;
      if (Date.now() + settings.quotaRetrySeconds * 1000 > deadline)
        throw ApplicationFailure.nonRetryable(
          'EC2 kept refusing ImportVolume (ResourceLimitExceeded) until the VM deadline',
          FailureType.DeadlineExceeded
        );
      await sleep(settings.quotaRetrySeconds * 1000, { summary: 'wait for EC2 import quota' });
    }
  }
}
