/**
 * Runtime configuration, parsed once with zod at process start (worker, CLI) and passed down. Nothing
 * deeper in the code reads process.env. Endpoints are the only difference between the local environment
 * and real AWS.
 */
import { z } from 'zod';
import { DEFAULT_NOTIFY_RECEIVER } from './contracts/notify';
import { REGION_PATTERN } from './aws/targets';

const optionalUrl = z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional());

/**
 * Network limits of the AWS clients (activities/aws-clients.ts). Without them the SDK waits for a silent
 * endpoint for ever (its 15-minute default socket timeout is opt-in, AWS_ENABLE_DEFAULT_SOCKET_TIMEOUT_2026),
 * far past the 2-minute start-to-close of the EC2 activities, and parses an answer of any size (a 20 MiB
 * body cost 4-7 s and 0.7 GB of RSS, a 100 MiB one 44 s and 3.8 GB).
 */
export const awsNetworkLimitsSchema = z.object({
  /**
   * TCP (and TLS) connection set-up, EC2 and S3. An AWS endpoint connects in milliseconds; 10 s still
   * allows three lost SYNs (Linux retransmits after 1, 3 and 7 s).
   */
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /**
   * One EC2 request from sending it to the last byte of the answer (connection included). EC2 answers in
   * well under a second, so 20 s never cuts a real answer; and the worst case of a fast activity,
   * ImportInstance's look-up (3 SDK attempts) plus the call itself, 4 × 20 s, stays under the
   * activity's 2-minute start-to-close: the activity fails by itself, classified, and is retried.
   */
  ec2TimeoutMs: z.number().int().positive().default(20_000),
  /**
   * EC2 answers larger than this are refused unread (Content-Length) or cut off (chunked), as a retryable
   * failure. The largest real answer vmconvoy reads is the unfiltered DescribeConversionTasks of the
   * idempotency look-up, about 3 KB per task of the last days (presigned manifest URL included): 16 MiB
   * is over 5,000 tasks, far more than an account's conversion limit lets exist.
   */
  ec2MaxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /**
   * S3: the longest a connection may stay silent, not a limit on the whole request: a 10 MiB part PUT over
   * a slow link takes as long as it takes while bytes move. Node does not time a socket out while its own
   * write queue still shrinks, but it does not see the kernel's send buffer draining after the last write,
   * nor S3's work before it answers; 60 s (the AWS CLI's read timeout) covers both on links down to about
   * 1 Mbit/s even with a full 4 MiB send buffer.
   */
  s3IdleTimeoutMs: z.number().int().positive().default(60_000),
});
export type AwsNetworkLimits = z.output<typeof awsNetworkLimitsSchema>;

/** The limits to use for a config: its own values, the schema's defaults for any it leaves out. */
export function awsNetworkLimitsOf(config: Partial<AwsNetworkLimits>): AwsNetworkLimits {
  return awsNetworkLimitsSchema.parse({
    connectTimeoutMs: config.connectTimeoutMs,
    ec2TimeoutMs: config.ec2TimeoutMs,
    ec2MaxResponseBytes: config.ec2MaxResponseBytes,
    s3IdleTimeoutMs: config.s3IdleTimeoutMs,
  });
}

const awsConfigObject = z.object({
  region: z.string().min(1, 'set AWS_REGION (e.g. us-east-1)'),
  /** AWS_ENDPOINT_URL_EC2; unset = real EC2. */
  ec2Endpoint: optionalUrl,
  /** AWS_ENDPOINT_URL_S3; unset = real S3. Local S3 servers need path-style addressing. */
  s3Endpoint: optionalUrl,
  bucket: z.string().min(3, 'set VMCONVOY_BUCKET to the S3 bucket that stages disk images'),
  /** Key prefix inside the bucket, e.g. `vmconvoy/`. */
  keyPrefix: z.string().default('vmconvoy/'),
  /** Explicit credentials (local servers); unset = the SDK's default credential chain. */
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
  /** SDK attempts per call before the activity retry policy takes over. */
  maxAttempts: z.number().int().min(1).default(3),
  // --- accounts (issue 20)
  /**
   * VMCONVOY_REGION_BUCKETS: the staging bucket of each further Region (`eu-west-1=bucket-eu,us-west-2=b2`).
   * VM Import reads the image from a bucket in the Region it imports into ("The given S3 bucket is not
   * local to the Region", https://docs.aws.amazon.com/vm-import/latest/userguide/vmimport-troubleshooting.html),
   * so a row whose Region differs from AWS_REGION stages in that Region's bucket. VMCONVOY_BUCKET is
   * AWS_REGION's.
   */
  regionBuckets: z.record(z.string(), z.string().min(3)).optional(),
  /**
   * VMCONVOY_REGION_S3_ENDPOINTS: a stand-in S3 per Region (`eu-west-1=http://127.0.0.1:9001`), for local
   * servers that serve one Region each; unset Regions use AWS_ENDPOINT_URL_S3 (or real S3).
   */
  regionS3Endpoints: z.record(z.string(), z.string().url()).optional(),
  /**
   * AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL; unset = the EC2 endpoint when one is set (common/aws/clients.ts
   * askSts: a stand-in EC2, such as the simulator, answers GetCallerIdentity too), else real STS.
   */
  stsEndpoint: optionalUrl,
  /** AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE: where `aws_profile` names are looked up (SDK defaults: ~/.aws/config, ~/.aws/credentials). */
  sharedConfigFile: z.string().optional(),
  sharedCredentialsFile: z.string().optional(),
});

export const awsConfigSchema = awsConfigObject.extend(awsNetworkLimitsSchema.shape);
/**
 * The network limits are optional here (a config built in code may leave them out; awsNetworkLimitsOf
 * fills in the defaults); loadConfig's parse always sets them.
 */
export type AwsConfig = Omit<z.output<typeof awsConfigSchema>, keyof AwsNetworkLimits> & Partial<AwsNetworkLimits>;

/** Task queues only: the connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS) is common/temporal/connection.ts's. */
export const temporalConfigSchema = z.object({
  taskQueue: z.string().default('vmconvoy'),
  /** Task queue for upload activities, so they run on the hosts that can read the images. */
  uploadTaskQueue: z.string().optional(),
  /** Task queue for the activities that call EC2; default `<taskQueue>-aws-api` (common/task-queues.ts). */
  awsApiTaskQueue: z.string().optional(),
  /** Task queue of the fleet and conversion-quota workflows; default `<taskQueue>-control` (common/task-queues.ts). */
  controlTaskQueue: z.string().optional(),
});
export type TemporalConfig = z.output<typeof temporalConfigSchema>;

export const configSchema = z.object({
  aws: awsConfigSchema,
  temporal: temporalConfigSchema,
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  logFormat: z.enum(['json', 'pretty']).default('pretty'),
  /** Directories images and user-data files may be read from (symlinks leaving them are refused); empty = anywhere. */
  imageRoots: z.array(z.string()).default([]),
  /**
   * VMCONVOY_ALLOW_ANY_PATH=1: the operator's explicit consent to run a worker without image roots (any file
   * the worker can read may then be named by an inventory); without it such a worker refuses to start.
   */
  allowAnyPath: z.boolean().default(false),
  metricsBindAddress: z.string().optional(),
  /** VMCONVOY_NOTIFY_SECRET: the HMAC key of `start --notify` events (worker only; never in a workflow). */
  notifySecret: z.string().optional(),
  /**
   * Where `start --notify [receiver]` events go, by receiver name (worker only): VMCONVOY_NOTIFY_URL is the
   * receiver `default`, VMCONVOY_NOTIFY_URL_<NAME> the receiver `<name>`. A batch records only the name,
   * because webhook URLs carry their token in the path or query and a batch's input stays in its history.
   */
  notifyReceivers: z.record(z.string(), z.string().url()).default({}),
  /** VMCONVOY_SCRATCH_DIR: where images are converted before upload (qcow2, VHDX, sparse/flat VMDK). */
  scratchDir: z.string().optional(),
  /** VMCONVOY_SCRATCH_CAP_GIB: the most that folder may hold, every conversion together; unset = its free space. */
  scratchCapGib: z.number().positive().optional(),
});
export type VmconvoyConfig = z.output<typeof configSchema>;

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** VMCONVOY_NOTIFY_URL (receiver `default`) and VMCONVOY_NOTIFY_URL_<NAME> (receiver `<name>`, lower case). */
export function notifyReceiversOf(env: NodeJS.ProcessEnv): Record<string, string> {
  const receivers: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!value) continue;
    if (key === 'VMCONVOY_NOTIFY_URL') receivers[DEFAULT_NOTIFY_RECEIVER] = value;
    else if (key.startsWith('VMCONVOY_NOTIFY_URL_'))
      receivers[key.slice('VMCONVOY_NOTIFY_URL_'.length).toLowerCase()] = value;
  }
  return receivers;
}

/** `region=value,region=value` (VMCONVOY_REGION_BUCKETS, VMCONVOY_REGION_S3_ENDPOINTS); a malformed entry is a problem. */
function regionMap(v: string | undefined, what: string, problems: string[]): Record<string, string> | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const map: Record<string, string> = {};
  for (const entry of v
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf('=');
    const region = entry.slice(0, Math.max(0, eq)).trim();
    if (eq <= 0 || !REGION_PATTERN.test(region))
      problems.push(`  - ${what}: "${entry}" is not REGION=VALUE (e.g. eu-west-1=...)`);
    else map[region] = entry.slice(eq + 1).trim();
  }
  return map;
}

/** Reads the documented environment variables; throws one error listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): VmconvoyConfig {
  const mapProblems: string[] = [];
  const raw = {
    aws: {
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? '',
      ec2Endpoint: nonEmpty(env.AWS_ENDPOINT_URL_EC2) ?? nonEmpty(env.AWS_ENDPOINT_URL),
      s3Endpoint: nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL),
      bucket: env.VMCONVOY_BUCKET ?? '',
      keyPrefix: env.VMCONVOY_KEY_PREFIX,
      accessKeyId: nonEmpty(env.AWS_ACCESS_KEY_ID),
      secretAccessKey: nonEmpty(env.AWS_SECRET_ACCESS_KEY),
      sessionToken: nonEmpty(env.AWS_SESSION_TOKEN),
      maxAttempts: env.AWS_MAX_ATTEMPTS ? Number(env.AWS_MAX_ATTEMPTS) : undefined,
      regionBuckets: regionMap(env.VMCONVOY_REGION_BUCKETS, 'VMCONVOY_REGION_BUCKETS', mapProblems),
      regionS3Endpoints: regionMap(env.VMCONVOY_REGION_S3_ENDPOINTS, 'VMCONVOY_REGION_S3_ENDPOINTS', mapProblems),
      stsEndpoint: nonEmpty(env.AWS_ENDPOINT_URL_STS) ?? nonEmpty(env.AWS_ENDPOINT_URL),
      sharedConfigFile: nonEmpty(env.AWS_CONFIG_FILE),
      sharedCredentialsFile: nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE),
    },
    temporal: {
      taskQueue: nonEmpty(env.VMCONVOY_TASK_QUEUE),
      uploadTaskQueue: nonEmpty(env.VMCONVOY_UPLOAD_TASK_QUEUE),
      awsApiTaskQueue: nonEmpty(env.VMCONVOY_AWS_API_TASK_QUEUE),
      controlTaskQueue: nonEmpty(env.VMCONVOY_CONTROL_TASK_QUEUE),
    },
    logLevel: nonEmpty(env.VMCONVOY_LOG_LEVEL),
    logFormat: nonEmpty(env.VMCONVOY_LOG_FORMAT),
    imageRoots: nonEmpty(env.VMCONVOY_IMAGE_ROOTS)?.split(':').filter(Boolean),
    allowAnyPath: ['1', 'true', 'yes'].includes((env.VMCONVOY_ALLOW_ANY_PATH ?? '').toLowerCase()),
    metricsBindAddress: nonEmpty(env.VMCONVOY_METRICS_ADDRESS),
    notifySecret: nonEmpty(env.VMCONVOY_NOTIFY_SECRET),
    notifyReceivers: notifyReceiversOf(env),
    scratchDir: nonEmpty(env.VMCONVOY_SCRATCH_DIR),
    scratchCapGib: env.VMCONVOY_SCRATCH_CAP_GIB ? Number(env.VMCONVOY_SCRATCH_CAP_GIB) : undefined,
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success || mapProblems.length > 0) {
    const lines = (parsed.success ? [] : parsed.error.issues).map((i) => `  - ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid vmconvoy configuration:\n${[...lines, ...mapProblems].join('\n')}`);
  }
  return parsed.data;
}
