/**
 * A VM's data disks (issue 19). Each is imported by its own child workflow, `<vm workflow ID>/disk-N`
 * (data-disk-workflow.ts): a conversion on the site worker when EC2 does not take its format as it is,
 * upload into the disk's folder inside the VM's (`<vm>/disk-N/`), its own manifest, its own conversion
 * slot (the quota's holders are workflows, so each disk holds a slot as the task it is), an ImportVolume
 * into the instance's availability zone that is as idempotent as ImportInstance (activities/import-volume.ts),
 * and the wait for its conversion. The VM workflow (DataDisks below) pre-flights them, starts the children
 * once ImportInstance has answered (the zone is the instance's), attaches the volumes when the instance's
 * conversion is done, and on failure cancels the children and cleans up what they made.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ObjectLocation } from '../common/contracts/activity-io';
import type { DataDiskPreflight, DataDiskRef } from '../common/contracts/data-disks';
import { dataDiskLocation, dataDiskSource } from '../common/contracts/data-disks';
import type { MigrationSettings, QuotaRef, VmSpec } from '../common/contracts/migration';
import { MAX_DATA_DISKS, dataDiskDevice } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import type { SiteActivities } from './activity-profiles';
import { NON_RETRYABLE_TYPES, SHORT_HEARTBEAT_TIMEOUT, awsApiActivities } from './activity-profiles';
import { discardScratchOnSite } from './convert-on-site';
import type { DataDiskWorkflowResult } from './data-disk-workflow';
import { dataDiskProgressSignal, importDataDiskWorkflow } from './data-disk-workflow';
import { VM_DATA_DISK_SCRATCH_PATCH, VM_DRY_RUN_DATA_DISKS_PATCH } from './versions';
import type { VmStatusTracker } from './vm-status';

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

type DataDisksVm = ConstructorParameters<typeof DataDisks>[1];

/** A dry run's data disks: pre-flighted, their scratch space checked, each shown as Checked. */
export async function dryRunDataDisks(refs: DataDiskRef[], vm: DataDisksVm, bootScratchBytes?: number): Promise<void> {
  if (refs.length > 0 && patched(VM_DRY_RUN_DATA_DISKS_PATCH))
    await new DataDisks(refs, vm).preflight(bootScratchBytes, true);
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

  /**
   * Every data disk read on the site, before any byte moves: a bad one fails the VM here. When a data disk is
   * converted on the site, the scratch folder must hold every conversion of the VM (`bootScratchBytes`: the
   * boot disk's, when it is converted too) before the first starts. A dry run (`checkOnly`) shows each disk
   * as Checked.
   */
  async preflight(bootScratchBytes?: number, checkOnly = false): Promise<void> {
    if (this.refs.length > MAX_DATA_DISKS)
      throw ApplicationFailure.nonRetryable(
        `${this.vm.spec.image} has ${this.refs.length} data disks; vmconvoy attaches at most ${MAX_DATA_DISKS} (/dev/sdf to /dev/sdp)`,
        FailureType.ImageFormatUnsupported
      );
    const options: ActivityOptions = {
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
      taskQueue: this.vm.uploadQueue,
      retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
    };
    const site = proxyActivities<SiteActivities>({ ...options, summary: 'pre-flight a data disk' });
    this.found = await Promise.all(this.refs.map((ref, i) => site.preflightDataDisk({ ref, disk: i + 1 })));
    this.vm.tracker.update({
      dataVolumes: this.found.map((f) => ({
        disk: f.disk,
        device: dataDiskDevice(f.disk),
        source: dataDiskSource(f.ref),
        bytesTotal: f.imageBytes,
        phase: checkOnly ? 'Checked' : 'Uploading',
      })),
    });
    const converted = this.found.filter((f) => f.conversion);
    if (converted.length > 0 && patched(VM_DATA_DISK_SCRATCH_PATCH)) {
      const parts = [
        ...(bootScratchBytes ? [{ what: 'boot disk', bytes: bootScratchBytes }] : []),
        ...converted.map((f) => ({
          what: `data disk ${f.disk} (${dataDiskSource(f.ref)})`,
          bytes: f.conversion!.scratchBytes,
        })),
      ];
      await proxyActivities<SiteActivities>({
        ...options,
        summary: 'check the scratch folder holds every conversion of the VM',
      }).checkVmScratch({ ...this.vm.location, parts });
    }
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
    // A child removes its own scratch folder when it fails; this covers a child that never got to it.
    const converted = this.found.filter((f) => f.conversion);
    if (converted.length > 0 && patched(VM_DATA_DISK_SCRATCH_PATCH)) {
      for (const f of converted) {
        const loc = dataDiskLocation(this.vm.location, f.disk);
        await discardScratchOnSite(loc, this.vm.settings, this.vm.uploadQueue).catch(() => undefined);
      }
    }
    await awsApiActivities('cancel and delete the data disks', this.vm.settings).cleanupDataVolumes({
      ...this.vm.location,
      reason,
      disks: this.refs.length,
    });
  }
}
