/**
 * migrateVmWorkflow: one VM from a local disk image to a validated, stopped EC2 instance.
 *
 *   preflight → upload parts → manifest → [conversion slot] → ImportInstance → wait → validate → cleanup
 *
 * Deterministic and secret-free: inputs and results are keys, names and AWS IDs. Presigned URLs and user
 * data exist only inside activities. On failure or cancellation the conversion task is cancelled and the
 * VM's objects deleted in a non-cancellable scope, so nothing is left behind.
 */
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  metricMeter,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import { FailureType } from '../common/failures';
import type { SiteActivities } from './activity-profiles';
import {
  NON_RETRYABLE_TYPES,
  SHORT_HEARTBEAT_TIMEOUT,
  awsApiActivities,
  mainQueueActivities,
  uploadActivities,
  validationActivities,
  vmSettingsFor,
} from './activity-profiles';
import { acquireConversionSlot, releaseConversionSlot } from './conversion-slot';
import { waitForConversion } from './conversion-wait';
import { notifyFleet, notifyFleetUploaded } from './fleet-signals';
import { errorType, recordOutcome, toVmError } from './vm-outcome';
import type { MigrateVmInput, MigrateVmResult } from '../common/contracts/migration';
import type {
  ConversionProgress,
  ImportInstanceInput,
  ManifestInput,
  ObjectLocation,
} from '../common/contracts/activity-io';
import { uploadQueueOf } from './vm-site';
import { targetOfSpec } from '../common/aws/targets';
import type { SentImage } from './convert-on-site';
import { convertOnSite, discardScratchOnSite } from './convert-on-site';
import { VmStatusTracker, inspectionOf } from './vm-status';
import { streamOptimizedUpload } from './stream-upload';
import { dataDiskRefs } from '../common/contracts/data-disks';
import { DataDisks, dryRunDataDisks } from './data-disks';
import { importWithQuotaWait } from './import-quota-wait';
import {
  VM_DATA_DISKS_PATCH,
  VM_DRY_RUN_UPLOADS_NOTHING_PATCH,
  VM_NAMESPACED_KEYS_PATCH,
  VM_SLOT_REQUEST_AND_UNINDEXED_PHASES_PATCH,
} from './versions';

export async function migrateVmWorkflow(input: MigrateVmInput): Promise<MigrateVmResult> {
  const { batch, spec } = input;
  // issue 20: its EC2 calls go under its account+Region's AWS API budget (the fairness key in its settings).
  const settings = vmSettingsFor(input.settings, input.aws);
  const tracker = new VmStatusTracker(batch, spec.name);
  const deadline = workflowInfo().startTime.getTime() + settings.deadlineSeconds * 1000;
  // --- ownership (issue 15): the VM's objects under its namespace; VMs started before keep the old keys.
  const location: ObjectLocation = patched(VM_NAMESPACED_KEYS_PATCH)
    ? { batch, vm: spec.name, namespace: workflowInfo().namespace }
    : { batch, vm: spec.name };
  // --- end ownership
  // --- accounts (issue 20): a row naming a profile or Region sends every AWS call there (input data only:
  // no command changes). The account the fleet resolved shows in status, report and the Web UI.
  const target = targetOfSpec(spec);
  if (target) location.aws = target;
  if (input.aws) tracker.update({ aws: input.aws });
  // --- end accounts
  // --- sites (issue 21): a VM of a site works on that site's queue, where its image is.
  const uploadQueue = uploadQueueOf(spec, settings.uploadTaskQueue, tracker);
  // Pre-flight reads the image, so it runs where the upload runs.
  const preflightOnSite = proxyActivities<SiteActivities>({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: SHORT_HEARTBEAT_TIMEOUT,
    taskQueue: uploadQueue,
    summary: 'pre-flight the disk image',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
  });
  let conversionTaskId: string | undefined;
  let holdsSlot = false;
  /** Set once a conversion on the site is scheduled: its scratch folder is deleted when the VM ends. */
  let scratchUsed = false;
  let dataDisks: DataDisks | undefined;

  try {
    // --- accounts (issue 20): the fleet could not resolve the row's account (unknown profile, STS refused).
    if (input.awsProblem) throw ApplicationFailure.nonRetryable(input.awsProblem.message, input.awsProblem.type);
    tracker.enter('Preflight');
    const image = await preflightOnSite.preflightImage({ spec });
    // The look inside the guest, for status, report and the Web UI (data only: no command, no patch).
    tracker.update({ bytesTotal: image.imageBytes, inspection: image.inspection });

    // --- zero-upload dry run (issue 18): the online checks and ImportInstance's DryRun need no upload.
    if (settings.dryRun && patched(VM_DRY_RUN_UPLOADS_NOTHING_PATCH)) {
      // --- data disks (issue 19): pre-flighted too, with the scratch space their conversions need.
      const vm = { location, spec, settings, quota: input.quota, uploadQueue, deadline, tracker };
      await dryRunDataDisks(dataDiskRefs(spec, image.ovf?.disks), vm, image.conversion?.scratchBytes);
      tracker.enter('Importing');
      await awsApiActivities('online checks and ImportInstance (DryRun)', settings).onlineChecks({
        ...location,
        spec,
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
      });
      tracker.enter('Completed');
      // The fleet learns at once (an older dry run waited for its reconcile timer).
      await notifyFleet(input, { vm: spec.name, phase: 'Completed' });
      const none = { instanceId: '', volumeId: '', conversionTaskId: '', bytesUploaded: 0 };
      return { batch, vm: spec.name, phase: 'Completed', ...none, dryRun: true };
    }
    // --- end zero-upload dry run

    // --- data disks (issue 19): read before any byte moves; imported by child workflows (data-disks.ts).
    const refs = dataDiskRefs(spec, image.ovf?.disks);
    if (refs.length > 0 && !settings.dryRun && patched(VM_DATA_DISKS_PATCH)) {
      const vm = { location, spec, settings, quota: input.quota, uploadQueue, deadline, tracker };
      dataDisks = new DataDisks(refs, vm);
      await dataDisks.preflight(image.conversion?.scratchBytes);
    }
    tracker.enter('Uploading');
    // --- formats (issue 19): what is uploaded, the image itself, its converted copy, or an OVA's disk range.
    let sent: SentImage = {
      image: spec.image,
      imageBytes: image.imageBytes,
      imageIdentity: image.imageIdentity,
      imageOffset: image.imageOffset,
      containerBytes: image.containerBytes,
    };
    if (image.conversion) {
      scratchUsed = true;
      sent = await convertOnSite(location, spec.image, image, settings, tracker, uploadQueue, spec);
    }
    // --- end formats
    const streamOptimized = streamOptimizedUpload(spec, settings, image);
    const uploaded = await uploadActivities(
      uploadQueue,
      settings.deadlineSeconds,
      settings.uploadHeartbeatSeconds
    ).uploadImage({
      ...location,
      ...sent,
      partSizeBytes: settings.partSizeBytes,
      concurrency: settings.uploadConcurrency,
      ...(streamOptimized ? { streamOptimized } : {}),
    });
    // What was uploaded: a stream-optimized upload made another file than the image (issue 19).
    const imageFormat = uploaded.format ?? image.format;
    const imageBytes = uploaded.imageBytes ?? sent.imageBytes;
    if (uploaded.imageBytes !== undefined) tracker.update({ bytesTotal: imageBytes });
    tracker.update({ bytesUploaded: imageBytes, percent: 100 });
    if (scratchUsed) {
      await discardScratchOnSite(location, settings, uploadQueue);
      scratchUsed = false;
    }
    await notifyFleetUploaded(input);

    const validUntil = new Date(deadline).toISOString();
    const manifestInput: ManifestInput = {
      ...location,
      format: imageFormat,
      imageBytes,
      volumeSizeGib: image.volumeSizeGib,
      partSizeBytes: settings.partSizeBytes,
      validUntil,
    };
    // Queued for a conversion slot as soon as the manifest exists (not for a dry run: it imports nothing).
    const slotRequest =
      input.quota && !settings.dryRun && patched(VM_SLOT_REQUEST_AND_UNINDEXED_PHASES_PATCH)
        ? { quota: input.quota, workflowId: workflowInfo().workflowId }
        : undefined;
    const manifest = await mainQueueActivities('write the VM Import manifest', settings).writeManifest({
      ...manifestInput,
      conversionSlot: slotRequest,
    });
    if (manifest.warnings.length > 0) tracker.update({ warnings: [...tracker.status.warnings, ...manifest.warnings] });

    const importInput: ImportInstanceInput = {
      dryRun: false,
      ...location,
      spec,
      format: imageFormat,
      imageBytes,
      volumeSizeGib: image.volumeSizeGib,
      manifestKey: manifest.manifestKey,
      validUntil,
      listingWaitSeconds: settings.importListingWaitSeconds,
    };
    if (settings.dryRun) {
      tracker.enter('Importing');
      await awsApiActivities('ImportInstance (DryRun)', settings).importInstance({ ...importInput, dryRun: true });
      await mainQueueActivities('delete uploaded objects', settings).cleanupVm({ ...location, reason: 'dry run' });
      tracker.enter('Completed');
      return {
        batch,
        vm: spec.name,
        phase: 'Completed',
        instanceId: '',
        volumeId: '',
        conversionTaskId: '',
        bytesUploaded: uploaded.bytesSent,
        dryRun: true,
        inspection: image.inspection,
      };
    }

    if (input.quota) {
      tracker.enter('WaitingForSlot');
      holdsSlot = await acquireConversionSlot(input.quota, deadline, slotRequest !== undefined);
      if (!holdsSlot)
        throw ApplicationFailure.nonRetryable(
          'No conversion slot before the VM deadline',
          FailureType.DeadlineExceeded
        );
    }

    // AWS sometimes cancels a conversion for its own reasons ("AWS initiated task cancellation"); such a
    // ConversionInterrupted is worth a fresh import with fresh URLs, a bounded number of times.
    let done: ConversionProgress | undefined;
    const conversionStarted = Date.now();
    for (let attempt = 1; !done; attempt++) {
      tracker.enter('Importing');
      const created = await importWithQuotaWait(importInput, settings, deadline, tracker);
      conversionTaskId = created.conversionTaskId;
      tracker.update({ conversionTaskId, instanceId: created.instanceId, volumeId: created.volumeId });
      await dataDisks?.start(created.instanceId);
      tracker.enter('Converting');
      try {
        done = await waitForConversion(created.conversionTaskId, imageBytes, settings, deadline, tracker, location.aws);
      } catch (err) {
        if (errorType(err) !== FailureType.ConversionInterrupted || attempt > settings.conversionRetries) throw err;
        tracker.update({
          retries: tracker.status.retries + 1,
          warnings: [
            ...tracker.status.warnings,
            `conversion ${created.conversionTaskId} interrupted by AWS (${toVmError(err).message}); importing again`,
          ],
        });
        // Fresh presigned URLs for the new task (the old ones may be close to expiry).
        await mainQueueActivities('rewrite the VM Import manifest', settings).writeManifest(manifestInput);
      }
    }
    conversionTaskId = undefined; // completed: nothing to cancel any more
    metricMeter
      .createHistogram('vmconvoy_conversion_duration_seconds', 'float', 's', 'ImportInstance to completed conversion')
      .record((Date.now() - conversionStarted) / 1000);
    if (holdsSlot && input.quota) {
      await releaseConversionSlot(input.quota.workflowId);
      holdsSlot = false;
    }

    tracker.enter('Validating');
    const dataVolumeIds = await dataDisks?.attach(done.instanceId ?? tracker.status.instanceId ?? '');
    const validated = await validationActivities(
      settings.bootCheckTimeoutSeconds,
      settings.awsApiTaskQueue,
      settings
    ).validateInstance({
      ...location,
      spec,
      instanceId: done.instanceId ?? tracker.status.instanceId ?? '',
      volumeSizeGib: image.volumeSizeGib,
      bootCheck: spec.bootCheck,
      dataVolumeIds,
      bootCheckTimeoutSeconds: settings.bootCheckTimeoutSeconds,
    });
    tracker.update({ instanceId: validated.instanceId, volumeId: validated.volumeId });

    if (!settings.keepObjects) {
      tracker.enter('CleaningUp');
      await mainQueueActivities('delete uploaded parts and manifest', settings).cleanupVm(location);
    }
    tracker.enter('Completed');
    recordOutcome('Completed');
    await notifyFleet(input, { vm: spec.name, phase: 'Completed', instanceId: validated.instanceId });
    return {
      batch,
      vm: spec.name,
      phase: 'Completed',
      instanceId: validated.instanceId,
      volumeId: validated.volumeId,
      conversionTaskId: tracker.status.conversionTaskId ?? '',
      bytesUploaded: uploaded.bytesSent,
      dryRun: false,
      dataVolumeIds,
      inspection: image.inspection,
      ...(input.aws ? { aws: input.aws } : {}),
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    const error = cancelled ? { type: 'Cancelled', message: 'cancelled by the operator' } : toVmError(err);
    tracker.fail(error);
    // A guest refused at pre-flight carries its inspection as the failure's details: kept in the status.
    const refused = inspectionOf(err);
    if (refused) tracker.update({ inspection: refused });
    // Cleanup must run even though the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      tracker.enter('CleaningUp');
      if (scratchUsed) await discardScratchOnSite(location, settings, uploadQueue).catch(() => undefined);
      const reason = cancelled ? 'cancelled by the operator' : `failed: ${error.type}`;
      await dataDisks?.cleanup(reason);
      const cleaned = await awsApiActivities(
        'cancel the conversion task and delete uploaded objects',
        settings
      ).cleanupVm({
        ...location,
        cancelConversionTaskId: conversionTaskId,
        // --- ownership (issue 15): cleanup stops this instance if it runs (an interrupted boot check).
        instanceId: tracker.status.instanceId,
        reason,
        // --- on-fail (issue 20): an input field only (no new command): histories replay unchanged.
        onFail: cancelled ? undefined : settings.onFail,
      });
      // Volumes of a terminated instance are detached now: the second pass deletes them.
      if (!cancelled && settings.onFail === 'terminate') await dataDisks?.cleanup(reason);
      tracker.leftBehind(cleaned.remainingInstances ?? []);
      if (holdsSlot && input.quota) await releaseConversionSlot(input.quota.workflowId);
      tracker.enter(cancelled ? 'Cancelled' : 'Failed');
      recordOutcome(cancelled ? 'Cancelled' : 'Failed', error.type);
      await notifyFleet(input, {
        vm: spec.name,
        phase: cancelled ? 'Cancelled' : 'Failed',
        error,
        instanceId: tracker.status.instanceId,
      });
    });
    if (cancelled) throw err;
    throw ApplicationFailure.create({
      message: error.message,
      type: error.type,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
      // Read back by `status` and `report` from the closed workflow (a data field: no command changes).
      // --- accounts (issue 20): the VM's account and Region second, for status and report of a failed VM.
      details:
        tracker.status.inspection || input.aws
          ? [tracker.status.inspection ?? null, ...(input.aws ? [input.aws] : [])]
          : undefined,
    });
  }
}
