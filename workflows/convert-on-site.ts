/**
 * The conversion of an image EC2 does not take as it is (issue 19), for migrateVm's boot disk and for each
 * data disk's child workflow (data-disks.ts): convertImage on the site queue (where the image and the
 * scratch folder are), then the upload sends the converted file; discardScratch deletes it once it is
 * uploaded, or when the VM (or the data disk) fails or is cancelled. Behind VM_CONVERT_ON_SITE_PATCH, which
 * a data disk's child records in its own history.
 */
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { ImageIdentity, ObjectLocation, PreflightResult } from '../common/contracts/activity-io';
import type { MigrationSettings, VmSpec } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import type { SiteActivities } from './activity-profiles';
import { fastCallOptions, uploadOptions } from './activity-profiles';
import { VM_CONVERT_ON_SITE_PATCH } from './versions';
import type { VmStatusTracker } from './vm-status';

export interface SentImage {
  image: string;
  imageBytes: number;
  imageIdentity?: ImageIdentity;
  imageOffset?: number;
  containerBytes?: number;
}

export async function convertOnSite(
  location: ObjectLocation,
  image: string,
  /** The boot disk's pre-flight, or a data disk's (data-disks.ts): what to convert and how. */
  preflight: Pick<PreflightResult, 'conversion' | 'sourceFormat' | 'imageIdentity'>,
  settings: MigrationSettings,
  /** The VM's status, or a data disk's progress (its child workflow reports it to the VM). */
  tracker: Pick<VmStatusTracker, 'update'>,
  /** The VM's upload queue (its site's, when it has one): the scratch folder is on those hosts. */
  uploadQueue: string | undefined,
  /** The row's platform and inspection override: the converted guest is inspected unless skipped. */
  guest?: Pick<VmSpec, 'platform' | 'inspection'>
): Promise<SentImage> {
  const plan = preflight.conversion!;
  // Only a pre-flight of this code asks for a conversion; a history of older code never reaches here.
  if (!patched(VM_CONVERT_ON_SITE_PATCH)) {
    throw ApplicationFailure.nonRetryable(
      `${image} needs a conversion that this VM's workflow version cannot do: run the VM again`,
      FailureType.ImageFormatUnsupported
    );
  }
  // As long and as heartbeat-watched as the upload: a killed worker's conversion moves on within the timeout.
  const site = proxyActivities<SiteActivities>({
    ...uploadOptions(uploadQueue, settings.deadlineSeconds, settings.uploadHeartbeatSeconds),
    summary: `convert the ${preflight.sourceFormat ?? plan.qemuFormat} image to a stream-optimized VMDK (scratch: up to ${Math.ceil(plan.scratchBytes / 2 ** 20)} MiB)`,
  });
  const converted = await site.convertImage({
    ...location,
    image,
    imageIdentity: preflight.imageIdentity,
    qemuFormat: plan.qemuFormat,
    // Same activity, same place in the sequence (no patch): only its input asks for the look inside, which
    // pre-flight could not take in a qcow2 or VHDX. A refusal fails the activity with GuestRefused.
    inspectGuest: guest && guest.inspection !== 'skip' ? { platform: guest.platform } : undefined,
  });
  // What the status counts the upload against from now on: the converted file, and its guest's verdict.
  tracker.update({
    bytesTotal: converted.imageBytes,
    ...(converted.inspection ? { inspection: converted.inspection } : {}),
  });
  return { image: converted.image, imageBytes: converted.imageBytes, imageIdentity: converted.imageIdentity };
}

/** Deletes the VM's scratch folder on the site (idempotent: a missing folder is fine). */
export async function discardScratchOnSite(
  location: ObjectLocation,
  settings: MigrationSettings,
  uploadQueue: string | undefined
): Promise<void> {
  await proxyActivities<SiteActivities>({
    ...fastCallOptions('delete the converted image from the scratch folder', settings),
    taskQueue: uploadQueue,
  }).discardScratch(location);
}
