/**
 * The activities' contract: what each activity takes and returns. Everything here crosses the workflow
 * boundary and so ends up in workflow histories: keys, names and IDs only, never presigned URLs, user data
 * contents or credentials.
 */
import type {
  DiskFormat,
  ImportFormat,
  InspectionSummary,
  OnFail,
  VmSpec,
  VmError,
  SlotRequestInput,
} from './migration';
import type { AwsTarget } from '../aws/targets';

/**
 * Where one VM's objects live: `<prefix>ns=<namespace>/<batch>/<vm>/` (common/object-keys.ts). Deterministic,
 * so a new run reuses finished parts. `namespace` (the Temporal namespace) keeps two deployments that share
 * a bucket apart; absent for VMs started before it was added, whose objects stay at `<prefix><batch>/<vm>/`.
 */
export interface ObjectLocation {
  batch: string;
  vm: string;
  namespace?: string;
  /**
   * --- accounts (issue 20): the profile and Region (names only) whose clients and staging bucket the
   * activity uses; absent = the worker's own.
   */
  aws?: AwsTarget;
}

export interface PreflightInput {
  spec: VmSpec;
}

export interface PreflightResult {
  /** The format uploaded (a converted image or an OVA's disk: VMDK). */
  format: ImportFormat;
  /** Detail for humans, e.g. `stream-optimized VMDK`, `dynamic VHD`. */
  kind: string;
  /** File length in bytes = Image.Bytes = manifest import/size. */
  imageBytes: number;
  /** Virtual disk size in bytes. */
  virtualBytes: number;
  /** Volume.Size in GiB. */
  volumeSizeGib: number;
  /** Which file pre-flight read; absent from results recorded before it was added. */
  imageIdentity?: ImageIdentity;
  /** The look inside the guest (a refusal fails pre-flight instead); absent in results from before it. */
  inspection?: InspectionSummary;
  /** The container found when it is not what is uploaded (QCOW2, VHDX, OVA; VMDK for a sparse or flat one). */
  sourceFormat?: DiskFormat;
  /** Set when the site worker converts the image to a stream-optimized VMDK first (`format` is then VMDK). */
  conversion?: ConversionPlan;
  /** OVA: where the boot disk starts inside the file; `imageBytes` is the disk's length. */
  imageOffset?: number;
  /** OVA: the whole file's length. */
  containerBytes?: number;
  /** OVA: what its OVF descriptor says of the VM. */
  ovf?: OvfSummary;
}

export interface ConversionPlan {
  /** qemu-img's name of the source format (qcow2, vhdx, vmdk). */
  qemuFormat: string;
  /** Scratch space the converted file needs at most (estimated from the source's allocated data). */
  scratchBytes: number;
}

/** What an OVA's OVF descriptor says of its VM (every field optional: OVFs from some tools omit them). */
export interface OvfSummary {
  /** Disks in the OVF's order; the first is the boot disk. */
  disks: number;
  /** The OVF's OS: its CIM id and description, or VMware's osType (e.g. `ubuntu64Guest`). */
  osType?: string;
  /** What the OS type says of the platform VM Import needs. */
  platform?: 'Windows' | 'Linux';
  cpus?: number;
  memoryMiB?: number;
  /** An instance type VM Import takes for this platform, sized by the OVF's CPUs and memory. */
  suggestedInstanceType?: string;
}

export interface ConvertInput extends ObjectLocation {
  image: string;
  /** Pre-flight's file: the conversion refuses any other (ImageChanged). */
  imageIdentity?: ImageIdentity;
  qemuFormat: string;
  /**
   * Inspect the guest in the converted VMDK before it is uploaded (activities/guest), judged for this
   * platform; absent for a row with `inspection=skip` and in histories from before the inspection.
   */
  inspectGuest?: Pick<VmSpec, 'platform'>;
}

export interface ConvertResult {
  /** The stream-optimized VMDK in the site worker's scratch folder: what the upload sends. */
  image: string;
  imageBytes: number;
  imageIdentity: ImageIdentity;
  /** True when a completed conversion of an earlier attempt was found and kept. */
  reused: boolean;
  /** The look inside the converted guest (a refusal fails the conversion with GuestRefused instead). */
  inspection?: InspectionSummary;
}

/** A file's device and inode numbers, as decimal strings (an inode number can exceed 2^53). */
export interface ImageIdentity {
  device: string;
  inode: string;
  /** The kernel that numbered the device (its boot ID): device numbers mean nothing on another host. */
  host?: string;
}

export interface UploadInput extends ObjectLocation {
  image: string;
  imageBytes: number;
  /** Pre-flight's file: the upload refuses any other (ImageChanged). Absent in histories from before it. */
  imageIdentity?: ImageIdentity;
  /** OVA: the disk's first byte inside the file (the parts are `imageBytes` from there). @default 0 */
  imageOffset?: number;
  /** OVA: the file's whole length, checked instead of `imageBytes`. */
  containerBytes?: number;
  partSizeBytes: number;
  concurrency: number;
  /**
   * Send the disk as a stream-optimized VMDK made while it is sent (RAW, or a fixed VHD's data): the first
   * `virtualBytes` of the file are the disk. Absent = the file as it is.
   */
  streamOptimized?: { virtualBytes: number };
}

export interface UploadResult {
  parts: number;
  /** The file uploaded when it is not the image itself (a stream-optimized upload): its length and format. */
  imageBytes?: number;
  format?: ImportFormat;
  /** Bytes sent by this activity execution (all attempts). */
  bytesSent: number;
  /** Bytes found already in S3 (size and ETag matched) and not sent again. */
  bytesReused: number;
}

export interface ManifestInput extends ObjectLocation {
  format: DiskFormat;
  imageBytes: number;
  volumeSizeGib: number;
  partSizeBytes: number;
  /** ISO time until which the presigned URLs must stay valid (capped at 7 days from now). */
  validUntil: string;
  /**
   * Queue the VM for a conversion slot once the manifest is written: the VM waits for one next, and asking
   * here spares it an activity of its own (the request is idempotent at the quota workflow).
   */
  conversionSlot?: SlotRequestInput;
}

export interface ManifestResult {
  manifestKey: string;
  /** ISO time the URLs really expire. */
  urlsExpireAt: string;
  warnings: string[];
}

export interface ImportInstanceInput extends ObjectLocation {
  spec: VmSpec;
  format: ImportFormat;
  imageBytes: number;
  volumeSizeGib: number;
  manifestKey: string;
  /** ISO time until which the manifest URL handed to EC2 must stay valid. */
  validUntil: string;
  dryRun: boolean;
  /** See MigrationSettings.importListingWaitSeconds. */
  listingWaitSeconds?: number;
}

export interface ImportInstanceResult {
  conversionTaskId: string;
  instanceId?: string;
  volumeId?: string;
  /** True when an existing task for this manifest was found instead of creating one. */
  adopted: boolean;
}

export type ConversionState = 'active' | 'cancelling' | 'cancelled' | 'completed';

export interface ConversionProgress {
  conversionTaskId: string;
  /** Set when the task ended without completing: the classified AWS status message. */
  failure?: VmError;
  state: ConversionState;
  statusMessage: string;
  /** 0-100, from bytesConverted / image size or the `Progress: N%` message. */
  percent: number;
  instanceId?: string;
  volumeId?: string;
}

export interface ValidateInput extends ObjectLocation {
  spec: VmSpec;
  instanceId: string;
  volumeSizeGib: number;
  bootCheck: boolean;
  bootCheckTimeoutSeconds: number;
  /** Data volumes attached at /dev/sdf, /dev/sdg, ... (issue 19): validation expects them beside the root. */
  dataVolumeIds?: string[];
}

export interface ValidateResult {
  instanceId: string;
  volumeId: string;
  checks: string[];
}

export interface CleanupInput extends ObjectLocation {
  /** Cancel this conversion task first if it is still active (failure/cancel paths). */
  cancelConversionTaskId?: string;
  /** The VM's instance as the workflow knows it: stopped if running (failure/cancel paths). */
  instanceId?: string;
  reason?: string;
  /** Failure path: `terminate` terminates the VM's converted instances and deletes their volumes. @default keep */
  onFail?: OnFail;
}

export interface CleanupResult {
  deletedObjects: number;
  cancelledTask: boolean;
  /** Instances of this VM found running and stopped (failure/cancel paths). */
  stoppedInstances?: string[];
  /** Converted instances of this VM that remain, stopped, for the operator or the next run (failure/cancel paths). */
  remainingInstances?: string[];
  /** Instances of this VM terminated (failure path with `onFail: terminate`). */
  terminatedInstances?: string[];
}

/**
 * What vmconvoy created in EC2 for one VM, kept in S3 beside its manifest (object-keys.ts
 * resourceRecordKey) from the moment ImportInstance answers. Cleanup keeps it on failure and cancel paths
 * while an instance remains, so a later run of the same VM (`retry`) adopts that instance or terminates
 * it before it imports again, and nothing vmconvoy made is left unknown.
 */
export interface VmResourceRecord {
  version: 1;
  batch: string;
  vm: string;
  /** Temporal namespace of the deployment that created them (absent: VMs of the layout without it). */
  namespace?: string;
  /** The imports of this VM, oldest first (a conversion AWS interrupted is imported again). */
  imports: RecordedImport[];
}

export interface RecordedImport {
  conversionTaskId: string;
  instanceId?: string;
  volumeId?: string;
  /** Workflow run that created (or adopted) it. */
  runId?: string;
  /** ISO time it was recorded. */
  at: string;
  /** Hash of the uploaded parts (keys, sizes, ETags): the bytes this instance was converted from. */
  imageFingerprint?: string;
  /** Set once the instance is known gone (terminated by a later run, or its task cancelled). */
  gone?: boolean;
  /**
   * When vmconvoy last left the instance stopped (ISO), and the instance's LaunchTime then: a LaunchTime
   * that differs later means someone started the instance since (a rollback leaves it alone unless forced).
   */
  stoppedAt?: string;
  launchTime?: string;
  /** Set once the volume is known deleted (a rollback, or `onFail: terminate`). */
  volumeDeleted?: boolean;
  /** An ImportVolume of data disk N (1 = the first): no instance; its volume goes to the VM's instance. */
  dataDisk?: number;
}
