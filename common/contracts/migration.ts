/**
 * Types shared by workflows, activities and the CLI. Everything here crosses the workflow boundary and
 * so ends up in workflow histories (readable in the Web UI): keys, names and IDs only, never presigned
 * URLs, user data contents or credentials.
 */
import { z } from 'zod';
import type { AwsAccount, AwsTarget } from '../aws/targets';
import { PROFILE_PATTERN, REGION_PATTERN } from '../aws/targets';

// ---------------------------------------------------------------------------------------------------
// The VM spec: one inventory row, normalised
// ---------------------------------------------------------------------------------------------------

export const DISK_FORMATS = ['VMDK', 'RAW', 'VHD', 'QCOW2', 'VHDX', 'OVA'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];
/** The formats EC2 VM Import takes as they are; the others are converted on the site worker (or, OVA, unpacked). */
export const IMPORT_FORMATS = ['VMDK', 'RAW', 'VHD'] as const satisfies readonly DiskFormat[];
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/**
 * How a RAW disk or fixed VHD is sent: `stream-optimized` (the default) as a stream-optimized VMDK made
 * while it is sent (zero grains skipped, the rest deflated), `as-is` byte for byte. Other formats are
 * sent as they are (or converted) whatever this says.
 */
export const UPLOAD_FORMATS = ['stream-optimized', 'as-is'] as const;
export type UploadFormat = (typeof UPLOAD_FORMATS)[number];

/**
 * VM and batch names: 1-64 characters of A-Z a-z 0-9 . _ -, and not only dots: `.` and `..` are path
 * segments (S3 keys and URLs would resolve them away: `b/../manifest.xml` is another VM's folder).
 */
export const VM_NAME_PATTERN = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;
export const VM_NAME_RULE = 'use 1-64 characters of A-Z a-z 0-9 . _ -, not only dots';

/**
 * Data disks per VM: attached at /dev/sdf … /dev/sdp, the device names the EC2 user guide recommends for EBS
 * volumes ("Device names for volumes"): eleven.
 */
export const MAX_DATA_DISKS = 11;
/** The device of data disk `n` (1 = the first data disk): /dev/sdf, /dev/sdg, ... */
export function dataDiskDevice(n: number): string {
  return `/dev/sd${String.fromCharCode('f'.charCodeAt(0) + n - 1)}`;
}

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
  /**
   * Data disks, in order (the inventory's `image` cell after the first `;`): each is imported with
   * ImportVolume into the instance's zone and attached at /dev/sdf, /dev/sdg, ... An OVA's own data disks
   * are not listed here: pre-flight finds them in its OVF. Absent = none.
   */
  dataDisks: z.array(z.string().min(1)).max(MAX_DATA_DISKS).optional(),
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
  /**
   * Guest inspection at validate and pre-flight (activities/guest): `skip` lets a row the reader cannot judge
   * go on (recorded as skipped by the operator). Absent = `enforce`.
   */
  inspection: z.enum(['enforce', 'skip']).optional(),
  /**
   * The site (datacenter) whose hosts hold the image: pre-flight and upload run on that site's task queue
   * (common/task-queues.ts siteTaskQueueOf), served by `vmconvoy worker --site NAME`. Absent = the batch's
   * upload queue. Named like a VM, as it is part of a task-queue name.
   */
  site: z.string().regex(VM_NAME_PATTERN, VM_NAME_RULE).optional(),
  /** How a RAW or fixed VHD image is sent (UPLOAD_FORMATS); absent = the batch's choice. */
  uploadFormat: z.enum(UPLOAD_FORMATS).optional(),
  /** --- accounts (issue 20): the Region to import into; absent = the worker's (AWS_REGION). */
  region: z.string().regex(REGION_PATTERN, 'not a Region name such as eu-west-1').optional(),
  /** The AWS profile (shared config/credentials files) of the target account; absent = the worker's credentials. */
  awsProfile: z.string().regex(PROFILE_PATTERN, 'not a profile name (1-64 of A-Z a-z 0-9 . _ @ + = , -)').optional(),
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
  /**
   * What a failed VM's converted instance becomes: `keep` leaves it stopped (for inspection; a retry adopts
   * or terminates it), `terminate` terminates it and deletes its volume. Unset = keep (`start --on-fail`).
   */
  onFail?: OnFail;
  /** How RAW and fixed VHD images are sent when their row does not say (`start --upload-format`). Unset = stream-optimized. */
  uploadFormat?: UploadFormat;
}

export const ON_FAIL_CHOICES = ['keep', 'terminate'] as const;
export type OnFail = (typeof ON_FAIL_CHOICES)[number];

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

/**
 * What the look inside the guest found (activities/guest): the verdict, each reason with its rule and what
 * to fix, and what was read (no file contents). `skipped`: the row said `inspection=skip`.
 */
export interface InspectionSummary {
  verdict: 'ok' | 'warn' | 'refuse' | 'skipped';
  reasons: Array<{ rule: string; severity: 'refuse' | 'warn'; message: string; fix: string }>;
  os?: string;
  kernel?: string;
  fileSystem?: string;
  freeBytes?: number;
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
  /** Pre-flight's look inside the guest (absent: VMs started before it, or pre-flight not done yet). */
  inspection?: InspectionSummary;
  /** The VM's site and the task queue its pre-flight and upload wait on (`status` checks it has a worker). */
  site?: { name: string; taskQueue: string };
  /** --- accounts (issue 20): the AWS account and Region the VM is imported into (absent: VMs started before). */
  aws?: AwsAccount;
  /** Its data disks (absent: none), in inventory order: each one's import and volume. */
  dataVolumes?: DataVolumeStatus[];
}

/** One data disk of a VM as status, report and the Web UI show it. */
export interface DataVolumeStatus {
  /** 1 = the first data disk. */
  disk: number;
  /** Where it is attached once done: /dev/sdf, /dev/sdg, ... */
  device: string;
  /** The file (or `file.ova#N`, the OVF's disk N counted from 0) it comes from. */
  source: string;
  bytesTotal: number;
  /** Checked: a dry run's pre-flight found the disk good (nothing is uploaded or imported). */
  phase: 'Checked' | 'Uploading' | 'WaitingForSlot' | 'Importing' | 'Converting' | 'Available' | 'Attached' | 'Failed';
  conversionTaskId?: string;
  volumeId?: string;
  sizeGib?: number;
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
  /** --- accounts (issue 20): the account behind the row's profile and Region, as the fleet resolved it. */
  aws?: AwsAccount;
  /** Why the fleet could not resolve that account (the VM fails at once with it, before any upload). */
  awsProblem?: { type: string; message: string };
}

export type { AwsAccount, AwsTarget };

export interface MigrateVmResult {
  batch: string;
  vm: string;
  phase: 'Completed';
  instanceId: string;
  volumeId: string;
  conversionTaskId: string;
  bytesUploaded: number;
  dryRun: boolean;
  /** The data volumes attached, in device order (/dev/sdf, ...); absent = none. */
  dataVolumeIds?: string[];
  /** Pre-flight's look inside the guest (absent in results from before it). */
  inspection?: InspectionSummary;
  /** --- accounts (issue 20): the account and Region it was imported into (absent: before accounts). */
  aws?: AwsAccount;
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
