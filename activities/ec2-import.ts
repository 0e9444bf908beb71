/**
 * ImportInstance and DescribeConversionTasks. ImportInstance is not idempotent (it has no client token), so
 * the call goes through a client that never retries on its own, and an attempt that may follow an earlier
 * one first looks for a task that already imports this VM's manifest. "May follow" is known from a marker
 * object written just before every ImportInstance: the look-up lists every conversion task of the account
 * in the region (EC2 keeps them listed for days; no filter exists), so it is done only when needed.
 *
 * A live (active or completed) task for the manifest is always ours to adopt. A failed one (cancelled) is
 * adopted only if this activity execution sent it: a conversion that failed within seconds, before the
 * retry of the attempt whose answer was lost could look, is still that attempt's result, whereas the
 * failed task of an earlier conversion attempt or workflow run is why the workflow imports again. The
 * marker names the execution and a hash of the signature of every manifest URL it sent (each presigned URL
 * is unique, and EC2 lists it with the task); the signature itself is never stored.
 */
import type { ConversionTask, EC2Client, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import { DescribeConversionTasksCommand, ImportInstanceCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type {
  ConversionProgress,
  ConversionState,
  ImportInstanceInput,
  ImportInstanceResult,
  VmSpec,
} from '../workflows/types';
import { activityExecution, activityLog, attempt, cancellationSignal } from './activity-context';
import type { Presigner } from './aws-clients';
import { classifyAwsError, conversionFailure, FailureType, isAwsError, isNotFound } from './errors';
import { importMarkerKey } from './object-keys';
import { urlExpiry } from './url-expiry';

export interface DescribeConversionInput {
  conversionTaskId: string;
  /** Image.Bytes, for the percentage from bytesConverted. */
  imageBytes: number;
}

/** EC2's limit on user data before base64. */
const MAX_USER_DATA_BYTES = 16 * 1024;

export interface Ec2ImportDeps {
  ec2: EC2Client;
  ec2NoRetry: EC2Client;
  presigner: Presigner;
  /** For the import marker (object-keys.ts importMarkerKey). */
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
  /** @default 60 */
  quotaRetrySeconds?: number;
}

// ---------------------------------------------------------------------------------------------------
// Finding our own task
// ---------------------------------------------------------------------------------------------------

/** True when a presigned manifest URL points at `bucket`/`key` (path-style or virtual-hosted). */
export function manifestUrlMatches(url: string | undefined, bucket: string, key: string): boolean {
  if (!url) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(parsed.pathname);
  } catch {
    return false;
  }
  return pathname.endsWith(`/${bucket}/${key}`) || (parsed.hostname.startsWith(`${bucket}.`) && pathname === `/${key}`);
}

function manifestUrlsOf(task: ConversionTask): string[] {
  return (task.ImportInstance?.Volumes ?? []).map((v) => v.Image?.ImportManifestUrl ?? '');
}

/** The live (active or completed) task importing this manifest; completed wins over active. */
export function findTaskForManifest(tasks: ConversionTask[], bucket: string, key: string): ConversionTask | undefined {
  const mine = tasks.filter(
    (t) =>
      (t.State === 'active' || t.State === 'completed') &&
      manifestUrlsOf(t).some((u) => manifestUrlMatches(u, bucket, key))
  );
  return mine.find((t) => t.State === 'completed') ?? mine[0];
}

/** Identifies one presigned URL without holding its signature: a hash of the signature. */
export function sentUrlId(url: string | undefined): string | undefined {
  if (!url) return undefined;
  let signature: string | null;
  try {
    signature = new URL(url).searchParams.get('X-Amz-Signature');
  } catch {
    return undefined;
  }
  return signature ? createHash('sha256').update(signature).digest('hex').slice(0, 32) : undefined;
}

/** A task (any state) that was created by one of these sends, identified by sentUrlId. */
export function findTaskSentWith(tasks: ConversionTask[], sent: readonly string[]): ConversionTask | undefined {
  if (sent.length === 0) return undefined;
  const mine = tasks.filter((t) => manifestUrlsOf(t).some((u) => sent.includes(sentUrlId(u) ?? '')));
  return mine.find((t) => t.State === 'completed') ?? mine.find((t) => t.State === 'active') ?? mine[0];
}

// ---------------------------------------------------------------------------------------------------
// ImportInstance
// ---------------------------------------------------------------------------------------------------

/** What the import marker holds: the activity execution that last wrote it, and what it sent. */
interface ImportMarker {
  execution?: string;
  /** sentUrlId of every manifest URL that execution sent, oldest first. */
  sent: string[];
}

/** A retried attempt sends again rarely more than a few times; the marker keeps the latest of them. */
const MAX_SENT_IDS = 50;

/** The marker's content, or undefined when there is none (no import was ever sent for this manifest). */
async function readImportMarker(deps: Pick<Ec2ImportDeps, 's3' | 'bucket' | 'keyPrefix'>, loc: { batch: string; vm: string }): Promise<ImportMarker | undefined> {
  const key = importMarkerKey(deps.keyPrefix, loc);
  let text: string;
  try {
    const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }), { abortSignal: cancellationSignal() });
    text = (await out.Body?.transformToString()) ?? '';
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw classifyAwsError(err, { operation: `reading ${key}`, bucket: deps.bucket, service: 'S3', attempt: attempt() });
  }
  // Empty (written by an earlier vmconvoy) or unreadable: an import may have been sent, by nobody known.
  try {
    const parsed = JSON.parse(text) as Partial<ImportMarker>;
    return { execution: typeof parsed.execution === 'string' ? parsed.execution : undefined, sent: Array.isArray(parsed.sent) ? parsed.sent.filter((x): x is string => typeof x === 'string') : [] };
  } catch {
    return { sent: [] };
  }
}

async function readUserData(file: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw ApplicationFailure.nonRetryable(
      `User data file ${file} cannot be read (${code}). Fix userDataFile in the inventory.`,
      FailureType.UserDataInvalid
    );
  }
  if (data.length > MAX_USER_DATA_BYTES) {
    throw ApplicationFailure.nonRetryable(
      `User data file ${file} is ${data.length} bytes; EC2 accepts at most ${MAX_USER_DATA_BYTES}. Shorten it (or compress it with gzip).`,
      FailureType.UserDataInvalid
    );
  }
  return data.toString('base64');
}

/** The ImportInstance request for a VM; user data is read here and never leaves the activity. */
export async function buildImportRequest(
  input: ImportInstanceInput,
  manifestUrl: string
): Promise<ImportInstanceCommandInput> {
  const spec: VmSpec = input.spec;
  const groupIds = spec.securityGroups.filter((g) => g.startsWith('sg-'));
  const groupNames = spec.securityGroups.filter((g) => !g.startsWith('sg-'));
  return {
    // The SDK's enum knows only Windows; EC2 (and the old CLIs) also take Linux.
    Platform: (spec.platform ?? 'Linux') as ImportInstanceCommandInput['Platform'],
    Description: spec.description ?? spec.name,
    DryRun: input.dryRun || undefined,
    LaunchSpecification: {
      Architecture: spec.architecture,
      InstanceType: spec.instanceType as NonNullable<ImportInstanceCommandInput['LaunchSpecification']>['InstanceType'],
      Placement: spec.availabilityZone ? { AvailabilityZone: spec.availabilityZone } : undefined,
      SubnetId: spec.subnetId,
      PrivateIpAddress: spec.privateIp,
      GroupNames: groupNames.length > 0 ? groupNames : undefined,
      GroupIds: groupIds.length > 0 ? groupIds : undefined,
      Monitoring: spec.monitoring,
      InstanceInitiatedShutdownBehavior: spec.shutdownBehavior,
      UserData: spec.userDataFile ? { Data: await readUserData(spec.userDataFile) } : undefined,
    },
    DiskImages: [
      {
        Image: { Format: input.format, Bytes: input.imageBytes, ImportManifestUrl: manifestUrl },
        Volume: { Size: input.volumeSizeGib },
        Description: spec.description ?? spec.name,
      },
    ],
  };
}

function resultOf(task: ConversionTask, adopted: boolean): ImportInstanceResult {
  return {
    conversionTaskId: task.ConversionTaskId ?? '',
    instanceId: task.ImportInstance?.InstanceId,
    volumeId: task.ImportInstance?.Volumes?.[0]?.Volume?.Id,
    adopted,
  };
}

/**
 * EC2 always sends `conversionTasks`, empty or not. A 200 without it (an HTML page from a proxy, a truncated
 * body) is a broken answer: retry it. Read as "no tasks", it would make ImportInstance create a duplicate
 * of a task whose creation response was lost.
 */
function listedTasks(tasks: ConversionTask[] | undefined): ConversionTask[] {
  if (tasks === undefined) {
    throw ApplicationFailure.create({
      type: 'AwsUnavailable',
      nonRetryable: false,
      message: 'DescribeConversionTasks answered without a task list (not an EC2 response?); retrying.',
    });
  }
  return tasks;
}

/** True when the marker exists: ImportInstance may already have been sent for this VM's manifest. */
export async function importMayHaveBeenSent(
  deps: Pick<Ec2ImportDeps, 's3' | 'bucket' | 'keyPrefix'>,
  loc: { batch: string; vm: string }
): Promise<boolean> {
  return (await readImportMarker(deps, loc)) !== undefined;
}

/** All conversion tasks of the account in the region (EC2 has no filter for a manifest). */
export async function listConversionTasks(ec2: EC2Client, operation: string, ctx: { quotaRetrySeconds?: number; bucket?: string }): Promise<ConversionTask[]> {
  try {
    const out = await ec2.send(new DescribeConversionTasksCommand({}), { abortSignal: cancellationSignal() });
    return listedTasks(out.ConversionTasks);
  } catch (err) {
    throw classifyAwsError(err, { operation, ...ctx, service: 'EC2', attempt: attempt() });
  }
}

export async function importInstance(deps: Ec2ImportDeps, input: ImportInstanceInput): Promise<ImportInstanceResult> {
  const abortSignal = cancellationSignal();
  const errorContext = (operation: string) => ({
    operation,
    service: 'EC2' as const,
    quotaRetrySeconds: deps.quotaRetrySeconds,
    bucket: deps.bucket,
    attempt: attempt(),
  });
  const vm = { batch: input.batch, vm: input.vm };

  const execution = activityExecution();
  let sentBefore: string[] = [];
  if (!input.dryRun) {
    const marker = await readImportMarker(deps, input);
    // This execution's earlier sends (a retried attempt); any other execution's are not ours to adopt.
    if (marker && execution !== undefined && marker.execution === execution) sentBefore = marker.sent;
    // A retried attempt, or any attempt after one that got as far as the marker, looks for its task first.
    if (attempt() > 1 || marker) {
      const tasks = await listConversionTasks(deps.ec2, 'DescribeConversionTasks (looking for an earlier import of this VM)', {
        quotaRetrySeconds: deps.quotaRetrySeconds,
        bucket: deps.bucket,
      });
      const existing = findTaskForManifest(tasks, deps.bucket, input.manifestKey) ?? findTaskSentWith(tasks, sentBefore);
      if (existing?.ConversionTaskId) {
        activityLog.info('adopted an existing conversion task', {
          ...vm,
          conversionTaskId: existing.ConversionTaskId,
          state: existing.State,
        });
        return resultOf(existing, true);
      }
    }
  }

  const expiry = await urlExpiry(deps.presigner, input.validUntil);
  const manifestUrl = await deps.presigner.presign(
    new GetObjectCommand({ Bucket: deps.bucket, Key: input.manifestKey }),
    expiry.expiresInSeconds
  );
  if (!input.dryRun) {
    // Durable before the request leaves: S3 is read-after-write consistent.
    const marker = importMarkerKey(deps.keyPrefix, input);
    const sentId = sentUrlId(manifestUrl);
    const body: ImportMarker = { execution, sent: [...sentBefore, ...(sentId ? [sentId] : [])].slice(-MAX_SENT_IDS) };
    try {
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: marker, Body: JSON.stringify(body), ContentType: 'application/json' }), { abortSignal });
    } catch (err) {
      throw classifyAwsError(err, { operation: `writing ${marker}`, bucket: deps.bucket, service: 'S3', attempt: attempt() });
    }
  }
  const request = await buildImportRequest(input, manifestUrl);
  try {
    const { ConversionTask: task } = await deps.ec2NoRetry.send(new ImportInstanceCommand(request), { abortSignal });
    if (!task?.ConversionTaskId) {
      throw ApplicationFailure.retryable(
        'ImportInstance returned no conversion task; retrying (the retry adopts the task if EC2 created one).',
        FailureType.AwsUnavailable
      );
    }
    activityLog.info('conversion task created', {
      ...vm,
      conversionTaskId: task.ConversionTaskId,
      instanceId: task.ImportInstance?.InstanceId,
    });
    return resultOf(task, false);
  } catch (err) {
    if (input.dryRun && isAwsError(err, 'DryRunOperation')) {
      activityLog.info('ImportInstance dry run succeeded', vm);
      return { conversionTaskId: '', adopted: false };
    }
    throw classifyAwsError(err, errorContext(input.dryRun ? 'ImportInstance (DryRun)' : 'ImportInstance'));
  }
}

// ---------------------------------------------------------------------------------------------------
// DescribeConversionTasks
// ---------------------------------------------------------------------------------------------------

const STATES: readonly ConversionState[] = ['active', 'cancelling', 'cancelled', 'completed'];

/** `Progress: 42%` → 42. */
export function progressFromMessage(message: string | undefined): number | undefined {
  const match = /Progress:\s*(\d{1,3})\s*%/i.exec(message ?? '');
  return match ? Math.min(100, Number(match[1])) : undefined;
}

/** One conversion task as the workflow sees it. */
export function toConversionProgress(task: ConversionTask, imageBytes: number): ConversionProgress {
  const id = task.ConversionTaskId ?? '';
  const state: ConversionState = STATES.includes(task.State as ConversionState)
    ? (task.State as ConversionState)
    : 'active';
  const volume = task.ImportInstance?.Volumes?.[0];
  const statusMessage = task.StatusMessage || volume?.StatusMessage || '';
  const byBytes =
    imageBytes > 0 && volume?.BytesConverted !== undefined ? Math.floor((volume.BytesConverted / imageBytes) * 100) : 0;
  const byMessage = Math.max(
    progressFromMessage(task.StatusMessage) ?? 0,
    progressFromMessage(volume?.StatusMessage) ?? 0
  );
  const percent = state === 'completed' ? 100 : Math.max(0, Math.min(99, Math.max(byBytes, byMessage)));
  return {
    conversionTaskId: id,
    state,
    statusMessage,
    percent,
    instanceId: task.ImportInstance?.InstanceId,
    volumeId: volume?.Volume?.Id,
    failure: state === 'cancelled' || state === 'cancelling' ? conversionFailure(id, statusMessage) : undefined,
  };
}

export async function describeConversion(
  deps: Pick<Ec2ImportDeps, 'ec2'>,
  input: DescribeConversionInput
): Promise<ConversionProgress> {
  let tasks: ConversionTask[];
  try {
    const out = await deps.ec2.send(
      new DescribeConversionTasksCommand({ ConversionTaskIds: [input.conversionTaskId] }),
      {
        abortSignal: cancellationSignal(),
      }
    );
    tasks = listedTasks(out.ConversionTasks);
  } catch (err) {
    // A task just created may not be listed yet (eventual consistency): "not yet" is not a failure.
    if (isAwsError(err, 'InvalidConversionTaskId')) tasks = [];
    else
      throw classifyAwsError(err, {
        operation: `DescribeConversionTasks ${input.conversionTaskId}`,
        service: 'EC2',
        attempt: attempt(),
      });
  }
  const task = tasks.find((t) => t.ConversionTaskId === input.conversionTaskId);
  if (!task) {
    return {
      conversionTaskId: input.conversionTaskId,
      state: 'active',
      statusMessage: 'waiting for EC2 to list the conversion task',
      percent: 0,
    };
  }
  return toConversionProgress(task, input.imageBytes);
}
