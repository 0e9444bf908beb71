/**
 * A VM's data disks (issue 19). Each is imported by its own child workflow, `<vm workflow ID>/disk-N`:
 * upload into the disk's folder inside the VM's (`<vm>/disk-N/`), its own manifest, its own conversion
 * slot (the quota's holders are workflows, so each disk holds a slot as the task it is), an ImportVolume
 * into the instance's availability zone that is as idempotent as ImportInstance (activities/import-volume.ts),
 * and the wait for its conversion. The VM workflow (DataDisks below) pre-flights them, starts the children
 * once ImportInstance has answered (the zone is the instance's), attaches the volumes when the instance's
 * conversion is done, and on failure cancels the children and cleans up what they made.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ObjectLocation } from '../common/contracts/activity-io';
import type { DataDiskPreflight, DataDiskRef, ImportVolumeResult } from '../common/contracts/data-disks';
import { dataDiskLocation, dataDiskSource } from '../common/contracts/data-disks';
import type { DataVolumeStatus, MigrationSettings, QuotaRef, VmSpec, VmStatus } from '../common/contracts/migration';
import { MAX_DATA_DISKS, dataDiskDevice } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import type { SiteActivities } from './activity-profiles';
import {
  NON_RETRYABLE_TYPES,
  SHORT_HEARTBEAT_TIMEOUT,
  awsApiActivities,
  importActivities,
  mainQueueActivities,
  uploadActivities,
} from './activity-profiles';
import { acquireConversionSlot, releaseConversionSlot } from './conversion-slot';
import { waitForConversion } from './conversion-wait';
import { errorType } from './vm-outcome';
import type { VmStatusTracker } from './vm-status';

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
  try {
    await uploadActivities(input.uploadQueue, settings.deadlineSeconds, settings.uploadHeartbeatSeconds).uploadImage({
      ...loc,
      image: found.ref.image,
      imageBytes: found.imageBytes,
      imageIdentity: found.imageIdentity,
      imageOffset: found.imageOffset,
      containerBytes: found.containerBytes,
      partSizeBytes: settings.partSizeBytes,
      concurrency: settings.uploadConcurrency,
    });
    const slotRequest = input.quota ? { quota: input.quota, workflowId: workflowInfo().workflowId } : undefined;
    const validUntil = new Date(deadline).toISOString();
    const manifest = await mainQueueActivities('write the data disk manifest', settings).writeManifest({
      ...loc,
      format: found.format,
      imageBytes: found.imageBytes,
      volumeSizeGib: found.volumeSizeGib,
      partSizeBytes: settings.partSizeBytes,
      validUntil,
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
    await report({ phase: 'Importing' });
    const created = await importVolumeWithQuotaWait(settings, deadline, {
      ...loc,
      vmLocation: input.vmLocation,
      disk: found.disk,
      instanceId: input.instanceId,
      format: found.format,
      imageBytes: found.imageBytes,
      volumeSizeGib: found.volumeSizeGib,
      manifestKey: manifest.manifestKey,
      validUntil,
      description: input.description,
      listingWaitSeconds: settings.importListingWaitSeconds,
    });
    await report({ phase: 'Converting', conversionTaskId: created.conversionTaskId, volumeId: created.volumeId });
    const status = { ...progress, percent: 0, warnings: [], retries: 0 } as unknown as VmStatus;
    const tracker = { status, update: (patch: Partial<VmStatus>) => void Object.assign(status, patch) };
    const done = await waitForConversion(created.conversionTaskId, found.imageBytes, settings, deadline, tracker);
    if (holdsSlot && input.quota) {
      await releaseConversionSlot(input.quota.workflowId);
      holdsSlot = false;
    }
    const volumeId = done.volumeId ?? created.volumeId ?? '';
    await report({ phase: 'Available', volumeId, sizeGib: found.volumeSizeGib });
    return {
      disk: found.disk,
      conversionTaskId: created.conversionTaskId,
      volumeId,
      volumeSizeGib: found.volumeSizeGib,
    };
  } catch (err) {
    // The VM workflow cancels what the task made (cleanupDataVolumes); the slot is this run's to give back.
    await CancellationScope.nonCancellable(async () => {
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

/**
 * A child's failure as the VM's own: the reason inside the child (AWS's status message, a refused upload)
 * with the disk named, not "Child Workflow execution failed".
 */
function diskFailure(err: unknown, disk: number): Error {
  let cause = err;
  while (cause instanceof ChildWorkflowFailure || cause instanceof ActivityFailure) cause = cause.cause;
  if (!(cause instanceof ApplicationFailure)) return err instanceof Error ? err : new Error(String(err));
  return ApplicationFailure.create({
    message: `data disk ${disk}: ${cause.message}`,
    type: cause.type ?? undefined,
    nonRetryable: true,
    cause: err instanceof Error ? err : undefined,
  });
}

/** The VM workflow's side: pre-flight, start, attach, clean up. */
export class DataDisks {
  private found: DataDiskPreflight[] = [];
  private scope: CancellationScope | undefined;
  private results: Array<Promise<DataDiskWorkflowResult>> = [];

  constructor(
    private readonly refs: DataDiskRef[],
    private readonly vm: {
      location: ObjectLocation;
      spec: VmSpec;
      settings: MigrationSettings;
      quota?: QuotaRef;
      uploadQueue?: string;
      deadline: number;
      tracker: VmStatusTracker;
    }
  ) {
    setHandler(dataDiskProgressSignal, (disk) => {
      const volumes = (vm.tracker.status.dataVolumes ?? []).map((d) => (d.disk === disk.disk ? disk : d));
      vm.tracker.update({ dataVolumes: volumes });
    });
  }

  /** Every data disk read on the site, before any byte moves: a bad one fails the VM here. */
  async preflight(): Promise<void> {
    if (this.refs.length > MAX_DATA_DISKS)
      throw ApplicationFailure.nonRetryable(
        `${this.vm.spec.image} has ${this.refs.length} data disks; vmconvoy attaches at most ${MAX_DATA_DISKS} (/dev/sdf to /dev/sdp)`,
        FailureType.ImageFormatUnsupported
      );
    const site = proxyActivities<SiteActivities>({
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
      taskQueue: this.vm.uploadQueue,
      summary: 'pre-flight a data disk',
      retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
    });
    this.found = await Promise.all(this.refs.map((ref, i) => site.preflightDataDisk({ ref, disk: i + 1 })));
    this.vm.tracker.update({
      dataVolumes: this.found.map((f) => ({
        disk: f.disk,
        device: dataDiskDevice(f.disk),
        source: dataDiskSource(f.ref),
        bytesTotal: f.imageBytes,
        phase: 'Uploading',
      })),
    });
  }

  /** Starts the children once the instance exists (its zone is where the volumes go). Once per VM run. */
  async start(instanceId: string | undefined): Promise<void> {
    if (this.scope) return;
    if (!instanceId)
      throw ApplicationFailure.nonRetryable('ImportInstance named no instance', FailureType.ConversionFailed);
    const scope = new CancellationScope();
    this.scope = scope;
    const { workflowId } = workflowInfo();
    const handles = await scope.run(() =>
      Promise.all(
        this.found.map((found) =>
          startChild(importDataDiskWorkflow, {
            workflowId: `${workflowId}/disk-${found.disk}`,
            args: [
              {
                vmLocation: this.vm.location,
                found,
                settings: this.vm.settings,
                uploadQueue: this.vm.uploadQueue,
                quota: this.vm.quota,
                instanceId,
                deadline: this.vm.deadline,
                description: `${this.vm.spec.name} data disk ${found.disk}`,
                parentWorkflowId: workflowId,
              },
            ],
          })
        )
      )
    );
    this.results = handles.map((h) => h.result());
    // Read at attach() or cleanup(): a failure meanwhile must not be an unhandled rejection.
    for (const r of this.results) r.catch(() => undefined);
  }

  /** Waits for every data volume, then attaches, validates and tags them (/dev/sdf, /dev/sdg, ...). */
  async attach(instanceId: string): Promise<string[]> {
    const volumes = await Promise.all(
      this.results.map((r, i) =>
        r.catch((err: unknown) => {
          throw diskFailure(err, i + 1);
        })
      )
    );
    const done = await awsApiActivities('attach the data volumes', this.vm.settings).attachDataVolumes({
      ...this.vm.location,
      spec: this.vm.spec,
      instanceId,
      volumes,
    });
    this.vm.tracker.update({
      dataVolumes: (this.vm.tracker.status.dataVolumes ?? []).map((d) => {
        const a = done.attached.find((x) => x.disk === d.disk);
        return a ? { ...d, phase: 'Attached', volumeId: a.volumeId, sizeGib: a.sizeGib } : d;
      }),
    });
    return done.attached.map((a) => a.volumeId);
  }

  /** Failure paths (non-cancellable scope): children cancelled and settled, then their tasks and volumes. */
  async cleanup(reason: string): Promise<void> {
    this.scope?.cancel();
    await Promise.allSettled(this.results);
    await awsApiActivities('cancel and delete the data disks', this.vm.settings).cleanupDataVolumes({
      ...this.vm.location,
      reason,
      disks: this.refs.length,
    });
  }
}
