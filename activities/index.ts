/**
 * The activities of vmconvoy, built from injected dependencies (AWS clients from the config). Workflows
 * import only the type: `proxyActivities<Activities>()`.
 */
import type { SlotRequestInput } from '../common/contracts/migration';
import type {
  CleanupInput,
  CleanupResult,
  ConvertInput,
  ConvertResult,
  ObjectLocation,
  ConversionProgress,
  ImportInstanceInput,
  ImportInstanceResult,
  ManifestInput,
  ManifestResult,
  PreflightInput,
  PreflightResult,
  UploadInput,
  UploadResult,
  ValidateInput,
  ValidateResult,
} from '../common/contracts/activity-io';
import { keepAlive } from './activity-context';
import type { InventoryPageInput } from '../common/contracts/fleet';
import type { AwsClients } from '../common/aws/clients';
import { createAwsClients } from '../common/aws/clients';
import { AwsClientPool } from '../common/aws/client-pool';
import type { AwsTarget } from '../common/aws/targets';
import type { ResolveAwsAccountInput } from './aws-account';
import { isTargetFailure, resolveAwsAccount, targetFailure } from './aws-account';
import { cleanupVm } from './cleanup';
import type { AwsConfig } from '../common/config';
import { createSlotActivities } from './conversion-slot';
import { preflightVm } from './disk-image/preflight';
import type { DescribeConversionInput } from './describe-conversion';
import { describeConversion } from './describe-conversion';
import { importInstance } from './import-instance';
import type { OnlineChecksInput, OnlineChecksResult } from './online-checks';
import { onlineChecks } from './online-checks';
import { createFleetActivities } from './fleet';
import type { WorkflowRunRef } from './fleet';
import { writeManifest } from './manifest';
import { uploadImage } from './upload';
import { convertImage } from './convert-image';
import type { ScratchConfig } from './disk-image/scratch';
import { DEFAULT_SCRATCH_DIR, checkVmScratchSpace, discardScratch } from './disk-image/scratch';
import { validateInstance } from './validate';
import type { BatchReportInput } from './batch-report';
import { writeBatchReport } from './batch-report';
import type { NotifyInput } from './notify';
import { sendNotification } from './notify';
import type { RollbackInput, RollbackVmInput } from '../common/contracts/rollback';
import { rollbackVm, scanRollback } from './rollback';
import type {
  AttachDataVolumesInput,
  DataDiskPreflightInput,
  DataVolumeCleanupInput,
  ImportVolumeInput,
  VmScratchCheckInput,
} from '../common/contracts/data-disks';
import { preflightDataDisk } from './data-disks';
import { importVolume } from './import-volume';
import { attachDataVolumes } from './attach-volumes';
import { cleanupDataVolumes } from './data-volume-cleanup';

export type { DescribeConversionInput } from './describe-conversion';

export interface ActivityDeps {
  config: AwsConfig;
  /** Directories images and user-data files may be read from; empty = anywhere (never /proc or /sys). */
  imageRoots?: string[];
  /** Prebuilt clients (tests); default: built from `config`. */
  clients?: AwsClients;
  /** qemu-img for pre-flight's cross-check; false = skip. @default 'qemu-img' when installed */
  qemuImg?: string | false;
  /** Boot check poll interval. @default 10 s */
  bootCheckPollMs?: number;
  /** Metrics hook: bytes of every uploaded part. */
  onBytesUploaded?: (bytes: number) => void;
  /** VMCONVOY_NOTIFY_SECRET: signs `start --notify` events (activities/notify.ts). */
  notifySecret?: string;
  /** VMCONVOY_NOTIFY_URL[_<NAME>]: the URL of each `start --notify` receiver, by name. */
  notifyReceivers?: Record<string, string>;
  /** Where images are converted before their upload (qcow2, VHDX, sparse/flat VMDK). @default DEFAULT_SCRATCH_DIR */
  scratch?: ScratchConfig;
}

export function createActivities(deps: ActivityDeps) {
  const clients = deps.clients ?? createAwsClients(deps.config);
  const { bucket, keyPrefix } = deps.config;
  // --- accounts (issue 20): a VM whose row names a profile or Region uses that target's clients and the
  // Region's staging bucket; the others (and every batch-level activity) the worker's own, as before.
  const pool = new AwsClientPool(deps.config, clients);
  const targetDeps = async (location: { aws?: AwsTarget }) => {
    if (!location.aws) return { clients, bucket, region: deps.config.region };
    const t = await pool.of(location.aws).catch((err: unknown) => {
      throw targetFailure(err);
    });
    return { clients: t.clients, bucket: t.bucket, region: t.region };
  };
  const s3DepsOf = async (location: { aws?: AwsTarget }) => {
    const t = await targetDeps(location);
    return { s3: t.clients.s3, bucket: t.bucket, keyPrefix };
  };
  const ec2DepsOf = async (location: { aws?: AwsTarget }) => {
    const t = await targetDeps(location);
    return {
      ec2: t.clients.ec2,
      ec2NoRetry: t.clients.ec2NoRetry,
      presigner: t.clients.presigner,
      s3: t.clients.s3,
      bucket: t.bucket,
      keyPrefix,
      imageRoots,
      region: t.region,
    };
  };
  /** A rollback's EC2 and the bucket holding its VMs' records: its account+Region's (issue 20). */
  const rollbackDepsOf = async (input: { aws?: AwsTarget | null }) => {
    const t = await targetDeps({ aws: input.aws ?? undefined });
    return { ec2: t.clients.ec2, s3: t.clients.s3, bucket: t.bucket, keyPrefix };
  };
  // --- end accounts
  const imageRoots = deps.imageRoots ?? [];
  const scratch = deps.scratch ?? { dir: DEFAULT_SCRATCH_DIR };
  // The upload reads converted images from the scratch folder too (no roots = anywhere already).
  const uploadRoots = imageRoots.length > 0 ? [...imageRoots, scratch.dir] : imageRoots;
  const s3Deps = { s3: clients.s3, bucket, keyPrefix };

  // Every activity but the upload heartbeats through keepAlive (see there): the upload heartbeats its own
  // progress, which its next attempt resumes from.
  const fleet = createFleetActivities(clients.s3, bucket);
  const slots = createSlotActivities();
  return {
    /** Reads the image (format, completeness, virtual size, Volume.Size), the row's launch rules and the guest. */
    preflightImage: keepAlive((input: PreflightInput): Promise<PreflightResult> =>
      preflightVm(input.spec, { imageRoots, qemuImg: deps.qemuImg })
    ),
    /** Uploads the image as part objects; resumable; heartbeats `{done, doneBelow, bytesSent}`. */
    uploadImage: async (input: UploadInput): Promise<UploadResult> =>
      uploadImage(
        {
          ...(await s3DepsOf(input)),
          imageRoots: uploadRoots,
          onBytesUploaded: deps.onBytesUploaded,
          qemuImg: deps.qemuImg,
        },
        input
      ),
    /** Converts the image to a stream-optimized VMDK in the scratch folder; heartbeats qemu-img's progress. */
    convertImage: (input: ConvertInput): Promise<ConvertResult> =>
      convertImage({ scratch, imageRoots, qemuImg: deps.qemuImg || undefined }, input),
    /** Deletes the VM's scratch folder (its converted image) when the VM ends. */
    discardScratch: keepAlive(async (location: ObjectLocation): Promise<{ freedBytes: number }> => ({
      freedBytes: await discardScratch(scratch, location),
    })),
    /**
     * Writes the manifest with presigned part URLs; returns its key and the URLs' expiry only. Then, when
     * asked, queues the VM for a conversion slot: last, so a failed write never leaves a request behind.
     */
    writeManifest: keepAlive(async (input: ManifestInput): Promise<ManifestResult> => {
      const { conversionSlot, ...manifest } = input;
      const t = await ec2DepsOf(manifest);
      const result = await writeManifest({ s3: t.s3, bucket: t.bucket, keyPrefix, presigner: t.presigner }, manifest);
      if (conversionSlot) await slots.requestConversionSlot(conversionSlot);
      return result;
    }),
    /** ImportInstance, adopting an existing task for the same manifest. */
    importInstance: keepAlive(async (input: ImportInstanceInput): Promise<ImportInstanceResult> =>
      importInstance(await ec2DepsOf(input), input)
    ),
    /** A dry run's online checks: the network as EC2 has it, and ImportInstance with DryRun (nothing uploaded). */
    onlineChecks: keepAlive(async (input: OnlineChecksInput): Promise<OnlineChecksResult> =>
      onlineChecks(await ec2DepsOf(input), input)
    ),
    /** One DescribeConversionTasks; the workflow polls with timers. */
    describeConversion: keepAlive(async (input: DescribeConversionInput): Promise<ConversionProgress> =>
      describeConversion(await ec2DepsOf(input), input)
    ),
    /** Checks the instance against the spec, tags it, optional boot check. */
    validateInstance: keepAlive(async (input: ValidateInput): Promise<ValidateResult> =>
      validateInstance({ ec2: (await ec2DepsOf(input)).ec2, pollIntervalMs: deps.bootCheckPollMs }, input)
    ),
    /** Cancels a still-active task (failure paths) and deletes the VM's objects. */
    cleanupVm: keepAlive(async (input: CleanupInput): Promise<CleanupResult> => {
      // A target the worker cannot serve (unknown profile, no bucket in its Region) never held anything.
      const t = await ec2DepsOf(input).catch((err: unknown) => {
        if (isTargetFailure(err)) return undefined;
        throw err;
      });
      if (!t) return { deletedObjects: 0, cancelledTask: false };
      return cleanupVm({ s3: t.s3, bucket: t.bucket, keyPrefix, ec2: t.ec2 }, input);
    }),
    /** The account behind a row's profile and Region (STS), asked by the fleet once per target per batch. */
    resolveAwsAccount: keepAlive((input: ResolveAwsAccountInput) => resolveAwsAccount(pool, input)),
    /** The VMs of a batch with a resource record, and instances tagged for it that no record names. */
    scanRollback: keepAlive(async (input: RollbackInput) => scanRollback(await rollbackDepsOf(input), input)),
    /** One VM's rollback: cancel its open tasks, terminate its instances, delete their volumes. */
    rollbackVm: keepAlive(async (input: RollbackVmInput) => rollbackVm(await rollbackDepsOf(input), input)),
    requestConversionSlot: keepAlive((input: SlotRequestInput) => slots.requestConversionSlot(input)),
    loadInventoryPage: keepAlive((input: InventoryPageInput) => fleet.loadInventoryPage(input)),
    vmWorkflowStates: keepAlive((workflowIds: string[]) => fleet.vmWorkflowStates(workflowIds)),
    workflowRunStates: keepAlive((runs: WorkflowRunRef[]) => fleet.workflowRunStates(runs)),
    /** The batch's report (JSON and HTML) into its S3 folder, at batch end. */
    writeBatchReport: keepAlive((input: BatchReportInput) => writeBatchReport(s3Deps, input)),
    // --- data disks (issue 19)
    /** Reads a data disk (a file, or a disk of the VM's OVA): format, completeness, size. No guest look. */
    preflightDataDisk: keepAlive((input: DataDiskPreflightInput) =>
      preflightDataDisk(input, { imageRoots, qemuImg: deps.qemuImg })
    ),
    /** Before a VM's first conversion: the scratch folder must hold all its conversions (boot and data disks). */
    checkVmScratch: keepAlive(({ parts, ...location }: VmScratchCheckInput) =>
      checkVmScratchSpace(scratch, location, parts)
    ),
    /** ImportVolume into the instance's zone, adopting an existing task for the disk's manifest. */
    // The worker's own account and Region: a row with data disks may not name another (client/inventory).
    importVolume: keepAlive(async (input: ImportVolumeInput) => importVolume(await ec2DepsOf({}), input)),
    /** Records, attaches (/dev/sdf, ...), validates and tags the data volumes. */
    attachDataVolumes: keepAlive((input: AttachDataVolumesInput) =>
      attachDataVolumes({ ...s3Deps, ec2: clients.ec2, pollIntervalMs: deps.bootCheckPollMs }, input)
    ),
    /** Failure paths: cancels the data disks' tasks, deletes their unattached volumes. */
    cleanupDataVolumes: keepAlive((input: DataVolumeCleanupInput) =>
      cleanupDataVolumes({ ...s3Deps, ec2: clients.ec2 }, input)
    ),
    // --- end data disks
    /** One signed POST of a batch event to the --notify receiver. */
    sendNotification: (input: NotifyInput) =>
      sendNotification({ secret: deps.notifySecret, receivers: deps.notifyReceivers ?? {} }, input),
  };
}

export type Activities = ReturnType<typeof createActivities>;
