/**
 * Patch IDs (workflow versioning). A workflow started before a change replays the old code path; one
 * started after it records the patch marker and takes the new one. Remove a branch only once no workflow
 * that started before it can still be running (and its replay fixtures are re-recorded).
 */

/**
 * migrateVm: the conversion-slot request rides on writeManifest, and seconds-long phases are not indexed
 * (the ID string is what histories hold: it never changes).
 */
export const VM_SLOT_REQUEST_AND_UNINDEXED_PHASES_PATCH = 'vm-lean-history';

/** migrateFleet: every VM the window allows is started in one workflow task, not one start per task. */
export const FLEET_STARTS_AT_ONCE_PATCH = 'fleet-starts-at-once';

/** migrateFleet: one reconcile timer per run instead of a timeout on every wait of the main loop. */
export const FLEET_RECONCILE_TIMER_PATCH = 'fleet-reconcile-timer';

/** conversionQuota: every free slot is granted at once, not one grant per delivered signal. */
export const QUOTA_GRANTS_AT_ONCE_PATCH = 'quota-grants-at-once';

/**
 * conversionQuota: slots are held by runs (a new run of a VM is another holder, granted by run), holders'
 * runs are checked every few minutes and a run that ended without giving its slot back loses it.
 */
export const QUOTA_HOLDER_RUNS_PATCH = 'quota-holder-runs';

/**
 * migrateVm: the VM's S3 objects live under the Temporal namespace (`<prefix>ns=<namespace>/<batch>/<vm>/`,
 * common/object-keys.ts), so deployments sharing a bucket never adopt or delete each other's. A VM started
 * before keeps its objects where they are (`<prefix><batch>/<vm>/`) to the end.
 */
export const VM_NAMESPACED_KEYS_PATCH = 'vm-namespaced-keys';

/** migrateFleet: at batch end, the batch's report (JSON and HTML) is written to its S3 folder (issue 20). */
export const FLEET_BATCH_REPORT_PATCH = 'fleet-batch-report';

/**
 * migrateFleet: a cancelled batch also writes its report to S3 (state `cancelled`) once its VMs have reported,
 * and tells its --notify receiver (batch.ended, state `cancelled`). A batch cancelled before wrote neither.
 */
export const FLEET_CANCEL_REPORT_PATCH = 'fleet-cancel-report';

/** migrateFleet: a batch started with --notify starts a notification workflow per event (issue 20). */
export const FLEET_NOTIFY_PATCH = 'fleet-notify';

/**
 * migrateVm (issue 18): a dry run uploads nothing. After pre-flight one activity (onlineChecks) asks EC2 about
 * the VM's network and sends ImportInstance with DryRun, then the VM completes: no upload, no manifest, no
 * cleanup. A dry run started before keeps uploading, writing the manifest and cleaning up to the end.
 */
export const VM_DRY_RUN_UPLOADS_NOTHING_PATCH = 'vm-dry-run-uploads-nothing';

/**
 * migrateVm: an image EC2 does not take as it is (qcow2, VHDX, sparse or flat VMDK) is converted on the site
 * worker (convertImage) before its upload, and its scratch folder deleted (discardScratch) once uploaded and
 * when the VM fails or is cancelled. Only VMs whose pre-flight asks for a conversion record the marker.
 */
export const VM_CONVERT_ON_SITE_PATCH = 'vm-convert-on-site';

/**
 * migrateVm: a VM whose inventory row names a site pre-flights and uploads on that site's task queue
 * (common/task-queues.ts siteTaskQueueOf). Only VMs with a site record the marker.
 */
export const VM_SITE_QUEUE_PATCH = 'vm-site-queue';

/**
 * migrateVm (issue 19): a RAW disk or fixed VHD is uploaded as a stream-optimized VMDK made on the fly
 * (workflows/stream-upload.ts), and the manifest and ImportInstance describe the file uploaded (format VMDK,
 * its length), unless its row or batch says upload_format=as-is. Only VMs that take this path record it.
 */
export const VM_STREAM_OPTIMIZED_UPLOAD_PATCH = 'vm-stream-optimized-upload';

/**
 * migrateFleet (issue 20): the AWS account behind each row's profile and Region is resolved (one
 * resolveAwsAccount activity per target per batch) and names the VM's conversion quota (`vmconvoy-quota/
 * <account>/<region>`), and a limit change reaches every account's quota. A fleet started before keeps the
 * one quota its input names.
 */
export const FLEET_AWS_ACCOUNTS_PATCH = 'fleet-aws-accounts';

/**
 * migrateVm (issue 19): a VM with data disks (the inventory's image list, or an OVA with more than one disk)
 * pre-flights them, imports each in its own child workflow (upload, manifest, a conversion slot, ImportVolume
 * into the instance's zone) once ImportInstance has answered, attaches them while the instance is stopped,
 * and cleans them up on failure. Only VMs with data disks record the marker.
 */
export const VM_DATA_DISKS_PATCH = 'vm-data-disks';

/**
 * migrateVm (issue 19): a VM whose data disks include one the site worker converts (qcow2, VHDX, sparse or
 * flat VMDK) checks, before its first conversion, that the scratch folder can hold every conversion it makes
 * (checkVmScratch: boot disk and data disks together), and on failure deletes its data disks' scratch
 * folders. The data disk's child converts through convertOnSite (it records VM_CONVERT_ON_SITE_PATCH). Only
 * VMs with such a data disk record the marker: no running workflow had one (pre-flight refused them).
 */
export const VM_DATA_DISK_SCRATCH_PATCH = 'vm-data-disk-scratch';

/**
 * migrateVm (issue 19): a dry run pre-flights the VM's data disks (and the scratch space their conversions
 * need) before its online checks, and shows each disk as Checked. Only dry runs of VMs with data disks
 * record the marker.
 */
export const VM_DRY_RUN_DATA_DISKS_PATCH = 'vm-dry-run-data-disks';

/**
 * importDataDisk (issue 19): a data disk whose conversion AWS interrupts (ConversionInterrupted: "AWS
 * initiated task cancellation") is imported again, as the boot disk is: the manifest rewritten with fresh
 * URLs and a new ImportVolume, at most `conversionRetries` times. Only children that meet such an
 * interruption record the marker; one of older code failed there.
 */
export const VM_DATA_DISK_REIMPORT_PATCH = 'vm-data-disk-reimport';

/**
 * migrateVm (issue 20): a VM whose account the fleet resolved schedules its EC2-calling activities (and its
 * data disks' child workflows theirs) with the fairness key `<account>/<region>` (common/task-queues.ts
 * awsApiFairnessKeyOf), so the AWS API budget, the AWS API queue's per-key rate limit, applies to each
 * account+Region on its own. VMs without an account, and VMs started before, keep unkeyed activities.
 */
export const VM_AWS_API_FAIRNESS_KEY_PATCH = 'vm-aws-api-fairness-key';
