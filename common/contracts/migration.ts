/**
 * Types shared by workflows, activities and the CLI. Everything here crosses the workflow boundary and
 * so ends up in workflow histories (readable in the Web UI): keys, names and IDs only, never presigned
 * URLs, user data contents or credentials.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------
// The VM spec: one inventory row, normalised
// ---------------------------------------------------------------------------------------------------

export const DISK_FORMATS = ['VMDK', 'RAW', 'VHD'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

/**
 * VM and batch names: 1-64 characters of A-Z a-z 0-9 . _ -, and not only dots: `.` and `..` are path
 * segments (S3 keys and URLs would resolve them away: `b/../manifest.xml` is another VM's folder).
 */
export const VM_NAME_PATTERN = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;
export const VM_NAME_RULE = 'use 1-64 characters of A-Z a-z 0-9 . _ -, not only dots';

/**
 * EC2's tag limits (EC2 user guide, "Tag restrictions"): 50 tags per resource, keys of 1-128 and values of
 * at most 256 Unicode characters, `aws:` (any case) reserved for AWS as a key or value prefix. Checked at
 * validate (and on every stored inventory page) rather than by CreateTags after hours of upload and
 * conversion; they also bound the size of a row, and so of an inventory page.
 */
export const MAX_TAGS_PER_RESOURCE = 50;
export const MAX_TAG_KEY_CHARS = 128;
export const MAX_TAG_VALUE_CHARS = 256;
/** The tags vmconvoy puts on every instance and volume it imports (activities/validate.ts vmTags). */
export const VMCONVOY_TAG_KEYS = ['Name', 'vmconvoy:batch', 'vmconvoy:vm'] as const;
/** Of those, the ones an inventory cannot set (vmconvoy's own value would silently replace it). */
const RESERVED_TAG_KEYS: readonly string[] = ['vmconvoy:batch', 'vmconvoy:vm'];

/** Unicode characters (code points), as AWS counts them; a string's length counts UTF-16 units. */
function chars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

const tagsSchema = z.record(z.string(), z.string()).superRefine((tags, ctx) => {
  const keys = Object.keys(tags);
  for (const key of keys) {
    const value = tags[key]!;
    const problem = (message: string): void => {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message, path: [key] });
    };
    if (chars(key) < 1 || chars(key) > MAX_TAG_KEY_CHARS)
      problem(`tag key "${key.slice(0, 40)}…" has ${chars(key)} characters; EC2 allows 1-${MAX_TAG_KEY_CHARS}`);
    if (chars(value) > MAX_TAG_VALUE_CHARS)
      problem(`tag "${key.slice(0, 40)}": the value has ${chars(value)} characters; EC2 allows ${MAX_TAG_VALUE_CHARS}`);
    if (/^aws:/i.test(key)) problem(`tag "${key.slice(0, 40)}": keys starting with aws: are reserved by AWS`);
    if (/^aws:/i.test(value)) problem(`tag "${key.slice(0, 40)}": values starting with aws: are reserved by AWS`);
    if (RESERVED_TAG_KEYS.includes(key)) problem(`tag "${key}" is set by vmconvoy itself: rename it`);
  }
  const total = new Set([...keys, ...VMCONVOY_TAG_KEYS]).size;
  if (total > MAX_TAGS_PER_RESOURCE)
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `${keys.length} tags and vmconvoy's own (${VMCONVOY_TAG_KEYS.join(', ')}) make ${total}; EC2 allows ${MAX_TAGS_PER_RESOURCE} per resource`,
    });
});

export const vmSpecSchema = z.object({
  /** Unique within a batch; part of workflow IDs and S3 keys. */
  name: z.string().regex(VM_NAME_PATTERN, VM_NAME_RULE),
  /** Absolute path of the disk image on the hosts that run upload activities. */
  image: z.string().min(1),
  /** Declared format; detected at pre-flight when absent. */
  format: z.enum(DISK_FORMATS).optional(),
  architecture: z.enum(['i386', 'x86_64']),
  instanceType: z.string().min(1),
  /** `Windows`, or absent for Linux. */
  platform: z.literal('Windows').optional(),
  availabilityZone: z.string().optional(),
  subnetId: z.string().optional(),
  privateIp: z.string().optional(),
  securityGroups: z.array(z.string().min(1)).default([]),
  /** Target root volume size; by default ceil(virtual size in GiB), at least 8. */
  volumeSizeGib: z.number().int().positive().optional(),
  description: z.string().max(255).optional(),
  /** Path of a user-data file; read only inside the import activity, never passed in history. */
  userDataFile: z.string().optional(),
  monitoring: z.boolean().default(false),
  shutdownBehavior: z.enum(['stop', 'terminate']).default('stop'),
  wave: z.number().int().min(1).default(1),
  tags: tagsSchema.default({}),
  /** Start the instance after import, wait for status ok, stop it again. */
  bootCheck: z.boolean().default(false),
});
export type VmSpec = z.output<typeof vmSpecSchema>;
export type VmSpecInput = z.input<typeof vmSpecSchema>;

// ---------------------------------------------------------------------------------------------------
// Per-VM settings chosen by the batch (not by the row)
// ---------------------------------------------------------------------------------------------------

export interface MigrationSettings {
  /** Size of each uploaded part. @default 10 MiB, as the EC2 import tools use */
  partSizeBytes: number;
  /** Parts uploaded in parallel by one VM. @default 4 */
  uploadConcurrency: number;
  /** Keep the uploaded parts and manifest after success. @default false */
  keepObjects: boolean;
  /** Whole-VM deadline from the workflow's start; also the presigned URLs' lifetime (capped at 7 days). @default 24 h */
  deadlineSeconds: number;
  /** First DescribeConversionTasks interval; grows by `pollBackoff` up to `pollMaxSeconds`. @default 5 */
  pollInitialSeconds: number;
  /** @default 300 */
  pollMaxSeconds: number;
  /** @default 1.5 */
  pollBackoff: number;
  /** How long to wait before retrying ImportInstance after ResourceLimitExceeded. @default 60 */
  quotaRetrySeconds: number;
  /**
   * A crashed worker's upload moves to another worker after this long without a heartbeat. The upload
   * heartbeats on a timer, whatever the speed of the part in flight, so a short value is safe. @default 20
   */
  uploadHeartbeatSeconds: number;
  /** Fresh imports after AWS interrupts a conversion (ConversionInterrupted). @default 2 */
  conversionRetries: number;
  /** Boot check: how long to wait for the instance to be running with status ok. @default 600 */
  bootCheckTimeoutSeconds: number;
  /**
   * After a lost ImportInstance answer: how long after that send EC2 may take to list the task it created
   * (eventual consistency); the retry looks again until then before it sends another. Unset = 90 s.
   */
  importListingWaitSeconds?: number;
  /** Only pre-flight and ImportInstance with DryRun, then stop. @default false */
  dryRun: boolean;
  /** Task queue of the hosts that can read the images (pre-flight and upload); unset = the main queue. */
  uploadTaskQueue?: string;
  /**
   * Task queue of the activities that call EC2 (ImportInstance, DescribeConversionTasks, validation,
   * cleanup). The server's rate limit on it is the AWS API request budget shared by every batch that uses
   * it; unset = the main queue (no budget). Set by the CLI from the worker's configuration.
   */
  awsApiTaskQueue?: string;
}

export const DEFAULT_SETTINGS: MigrationSettings = {
  partSizeBytes: 10 * 1024 * 1024,
  uploadConcurrency: 4,
  keepObjects: false,
  deadlineSeconds: 24 * 3600,
  pollInitialSeconds: 5,
  pollMaxSeconds: 300,
  pollBackoff: 1.5,
  quotaRetrySeconds: 60,
  conversionRetries: 2,
  uploadHeartbeatSeconds: 20,
  bootCheckTimeoutSeconds: 600,
  dryRun: false,
};

// ---------------------------------------------------------------------------------------------------
// Phases and status
// ---------------------------------------------------------------------------------------------------

/** The phase a VM is in; also the MigrationPhase search attribute. */
export const PHASES = [
  'Pending',
  'Preflight',
  'Uploading',
  'WaitingForSlot',
  'Importing',
  'Converting',
  'Validating',
  'CleaningUp',
  'Completed',
  'Failed',
  'Cancelled',
] as const;
export type Phase = (typeof PHASES)[number];

export interface VmError {
  /** Stable ApplicationFailure type, e.g. `ImageFormatUnsupported`, `ConversionFailed`. */
  type: string;
  message: string;
}

/** What the per-VM `status` query returns. */
export interface VmStatus {
  batch: string;
  vm: string;
  phase: Phase;
  /** 0-100 within the current phase (upload: bytes sent; conversion: EC2's `Progress: N%`, or BytesConverted when higher). */
  percent: number;
  bytesUploaded: number;
  bytesTotal: number;
  conversionTaskId?: string;
  instanceId?: string;
  volumeId?: string;
  /** Last AWS status message seen (e.g. `Progress: 40%`). */
  statusMessage?: string;
  lastError?: VmError;
  /** Activity attempts that failed and were retried so far. */
  retries: number;
  startedAt: string;
  finishedAt?: string;
  /** Warnings for the operator, e.g. presigned URLs expiring before the deadline. */
  warnings: string[];
}

export interface MigrateVmInput {
  batch: string;
  spec: VmSpec;
  settings: MigrationSettings;
  /**
   * The conversion-quota workflow that hands out conversion slots for this VM's account and region, and the
   * limit it starts with if it is not running yet; absent = no slot management (ImportInstance's
   * ResourceLimitExceeded is then the only limiter).
   */
  quota?: QuotaRef;
  /** Workflow ID of the fleet to notify when this VM ends (by signal, so it reaches the latest run). */
  fleetWorkflowId?: string;
}

export interface MigrateVmResult {
  batch: string;
  vm: string;
  phase: 'Completed';
  instanceId: string;
  volumeId: string;
  conversionTaskId: string;
  bytesUploaded: number;
  dryRun: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Activity inputs and outputs (the activities' contract)
// ---------------------------------------------------------------------------------------------------

/**
 * Where one VM's objects live: `<prefix>ns=<namespace>/<batch>/<vm>/` (common/object-keys.ts). Deterministic,
 * so a new run reuses finished parts. `namespace` (the Temporal namespace) keeps two deployments that share
 * a bucket apart; absent for VMs started before it was added, whose objects stay at `<prefix><batch>/<vm>/`.
 */
export interface ObjectLocation {
  batch: string;
  vm: string;
  namespace?: string;
}

export interface PreflightInput {
  spec: VmSpec;
}

export interface PreflightResult {
  format: DiskFormat;
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
  partSizeBytes: number;
  concurrency: number;
}

export interface UploadResult {
  parts: number;
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
  format: DiskFormat;
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
}

export interface CleanupResult {
  deletedObjects: number;
  cancelledTask: boolean;
  /** Instances of this VM found running and stopped (failure/cancel paths). */
  stoppedInstances?: string[];
  /** Converted instances of this VM that remain, stopped, for the operator or the next run (failure/cancel paths). */
  remainingInstances?: string[];
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
}

/** The conversion-quota workflow of an account+region, as a VM knows it. */
export interface QuotaRef {
  workflowId: string;
  /** Its limit when a request has to start it. */
  limit: number;
  /** Where it runs when a request has to start it. Unset = the queue of the activity that asks. */
  taskQueue?: string;
}

export interface SlotRequestInput {
  quota: QuotaRef;
  /** The VM workflow asking; the grant is signalled there. */
  workflowId: string;
}
