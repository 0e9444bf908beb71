/**
 * How ImportInstance stays idempotent. ImportInstance is not idempotent (it has no client token), so
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
 *
 * EC2 lists what it creates eventually, not at once ("eventual consistency", EC2 API reference: a resource
 * just created may not be returned by Describe calls for a while). So when the marker's last send is recent
 * and its task is not listed yet, the look-up looks again with backoff until `listingWaitSeconds` after that
 * send, and only then sends another ImportInstance.
 */
import type { ConversionTask, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeConversionTasksCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import type { ImportInstanceResult, ObjectLocation } from '../common/contracts/activity-io';
import { FailureType } from '../common/failures';
import { importMarkerKey } from '../common/object-keys';
import { activityExecution, activityLog, attempt, heartbeat, sleepMs, throwIfCancelled } from './activity-context';
import { awsCall } from './aws-call';
import { readSmallObject, writeJsonObject } from './s3-objects';

/** Where the marker lives. */
export interface MarkerStore {
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
}

type VmLocation = ObjectLocation;

/**
 * How long after a send EC2 may take to list the task it created. EC2 documents no bound; minutes-long
 * delays are rare, seconds common: 90 s, with the ImportInstance request's own time inside it.
 */
export const DEFAULT_LISTING_WAIT_SECONDS = 90;
/** Look-ups while waiting: 2 s, then doubling, at most 16 s apart (DescribeConversionTasks is a list of all). */
const LISTING_POLL_FIRST_MS = 2_000;
const LISTING_POLL_MAX_MS = 16_000;

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

/** The manifest URLs a task was given: ImportInstance's volume, or ImportVolume's image (a data disk). */
function manifestUrlsOf(task: ConversionTask): string[] {
  const volume = task.ImportVolume?.Image?.ImportManifestUrl;
  return [
    ...(task.ImportInstance?.Volumes ?? []).map((v) => v.Image?.ImportManifestUrl ?? ''),
    ...(volume ? [volume] : []),
  ];
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

/** What the import marker holds: the activity execution that last wrote it, and what it sent. */
interface ImportMarker {
  execution?: string;
  /** sentUrlId of every manifest URL that execution sent, oldest first. */
  sent: string[];
  /** Epoch ms the last send was about to go out (absent in markers of earlier versions). */
  sentAt?: number;
  /** Temporal namespace of the deployment that wrote it. */
  namespace?: string;
}

/** A retried attempt sends again rarely more than a few times; the marker keeps the latest of them. */
const MAX_SENT_IDS = 50;

/** The marker's content, or undefined when there is none (no import was ever sent for this manifest). */
async function readImportMarker(deps: MarkerStore, loc: VmLocation): Promise<ImportMarker | undefined> {
  const key = importMarkerKey(deps.keyPrefix, loc);
  const text = await readSmallObject(deps, key);
  if (text === undefined) return undefined;
  // Empty (written by an earlier vmconvoy) or unreadable: an import may have been sent, by nobody known.
  try {
    const parsed = JSON.parse(text) as Partial<ImportMarker>;
    return {
      execution: typeof parsed.execution === 'string' ? parsed.execution : undefined,
      sent: Array.isArray(parsed.sent) ? parsed.sent.filter((x): x is string => typeof x === 'string') : [],
      sentAt: typeof parsed.sentAt === 'number' && Number.isFinite(parsed.sentAt) ? parsed.sentAt : undefined,
      namespace: typeof parsed.namespace === 'string' ? parsed.namespace : undefined,
    };
  } catch {
    return { sent: [] };
  }
}

/** True when the marker exists: ImportInstance may already have been sent for this VM's manifest. */
export async function importMayHaveBeenSent(deps: MarkerStore, loc: VmLocation): Promise<boolean> {
  return (await readImportMarker(deps, loc)) !== undefined;
}

/**
 * EC2 always sends `conversionTasks`, empty or not. A 200 without it (an HTML page from a proxy, a truncated
 * body) is a broken answer: retry it. Read as "no tasks", it would make ImportInstance create a duplicate
 * of a task whose creation response was lost.
 */
export function listedTasks(tasks: ConversionTask[] | undefined): ConversionTask[] {
  if (tasks === undefined) {
    throw ApplicationFailure.create({
      type: FailureType.AwsUnavailable,
      nonRetryable: false,
      message: 'DescribeConversionTasks answered without a task list (not an EC2 response?); retrying.',
    });
  }
  return tasks;
}

/** All conversion tasks of the account in the region (EC2 has no filter for a manifest). */
export function listConversionTasks(
  ec2: EC2Client,
  operation: string,
  ctx: { bucket?: string }
): Promise<ConversionTask[]> {
  return awsCall({ operation, ...ctx, service: 'EC2' }, async (abortSignal) => {
    const out = await ec2.send(new DescribeConversionTasksCommand({}), { abortSignal });
    return listedTasks(out.ConversionTasks);
  });
}

export function resultOf(task: ConversionTask, adopted: boolean): ImportInstanceResult {
  return {
    conversionTaskId: task.ConversionTaskId ?? '',
    instanceId: task.ImportInstance?.InstanceId,
    volumeId: task.ImportInstance?.Volumes?.[0]?.Volume?.Id ?? task.ImportVolume?.Volume?.Id,
    adopted,
  };
}

/** What an import attempt learnt before it sends: a task to adopt, or the sends to remember with its own. */
export interface EarlierImport {
  adopt?: ImportInstanceResult;
  /** The adopted task's state: a cancelled one has no instance left to tag. */
  adoptedState?: string;
  /** sentUrlId of this execution's earlier sends (a retried attempt); empty otherwise. */
  sentBefore: string[];
}

/**
 * Looks for the task an earlier attempt created for this manifest, when one may have: a retried attempt, or
 * any attempt after one that got as far as writing the marker.
 */
export async function findEarlierImport(
  deps: MarkerStore & { ec2: EC2Client },
  input: VmLocation & { manifestKey: string; listingWaitSeconds?: number }
): Promise<EarlierImport> {
  const execution = activityExecution();
  const marker = await readImportMarker(deps, input);
  // This execution's earlier sends (a retried attempt); any other execution's are not ours to adopt.
  const sentBefore = marker && execution !== undefined && marker.execution === execution ? marker.sent : [];
  if (attempt() === 1 && !marker) return { sentBefore };
  const waitUntil = listingWaitDeadline(marker, input.listingWaitSeconds);
  let existing: ConversionTask | undefined;
  for (let pause = LISTING_POLL_FIRST_MS, looks = 1; ; pause = Math.min(pause * 2, LISTING_POLL_MAX_MS), looks++) {
    const tasks = await listConversionTasks(
      deps.ec2,
      'DescribeConversionTasks (looking for an earlier import of this VM)',
      { bucket: deps.bucket }
    );
    existing = findTaskForManifest(tasks, deps.bucket, input.manifestKey) ?? findTaskSentWith(tasks, sentBefore);
    if (existing?.ConversionTaskId) break;
    // The last send's task is listed (in some ended state): its outcome is known, nothing more to wait for.
    const lastSent = marker?.sent[marker.sent.length - 1];
    const lastSendListed = lastSent !== undefined && findTaskSentWith(tasks, [lastSent]) !== undefined;
    const left = waitUntil - Date.now();
    if (lastSendListed || left <= 0) {
      if (looks > 1) activityLog.info('no earlier task listed after waiting for EC2', { ...input, looks });
      return { sentBefore };
    }
    heartbeat({ waitingFor: 'EC2 to list an earlier import', looks });
    await sleepMs(Math.min(pause, left));
    throwIfCancelled();
  }
  activityLog.info('adopted an existing conversion task', {
    batch: input.batch,
    vm: input.vm,
    conversionTaskId: existing.ConversionTaskId,
    state: existing.State,
  });
  return { adopt: resultOf(existing, true), adoptedState: existing.State, sentBefore };
}

/**
 * Until when a look-up waits for EC2 to list the task of the marker's last send: `listingWaitSeconds` after
 * that send. A marker of an earlier version (no time) or of another deployment's namespace sets no wait.
 */
export function listingWaitDeadline(
  marker: Pick<ImportMarker, 'sentAt' | 'sent'> | undefined,
  listingWaitSeconds: number | undefined
): number {
  if (marker?.sentAt === undefined || marker.sent.length === 0) return 0;
  return marker.sentAt + (listingWaitSeconds ?? DEFAULT_LISTING_WAIT_SECONDS) * 1000;
}

/** Writes the marker just before ImportInstance is sent: durable first, since S3 is read-after-write consistent. */
export async function recordImportSend(
  deps: MarkerStore,
  loc: VmLocation,
  sentBefore: string[],
  manifestUrl: string
): Promise<void> {
  const key = importMarkerKey(deps.keyPrefix, loc);
  const sentId = sentUrlId(manifestUrl);
  const body: ImportMarker = {
    execution: activityExecution(),
    sent: [...sentBefore, ...(sentId ? [sentId] : [])].slice(-MAX_SENT_IDS),
    sentAt: Date.now(),
    namespace: loc.namespace,
  };
  await writeJsonObject(deps, key, body);
}

/**
 * EC2 answered the send with a refusal that creates nothing (throttled, over the import quota, an invalid
 * parameter): that send is taken out of the marker, so the next attempt does not wait for a task that can
 * never be listed. Ambiguous failures (5xx, a lost answer) stay: EC2 may have created the task.
 */
export async function recordSendRefused(deps: MarkerStore, loc: VmLocation, manifestUrl: string): Promise<void> {
  const marker = await readImportMarker(deps, loc);
  const refused = sentUrlId(manifestUrl);
  if (!marker || refused === undefined) return;
  const key = importMarkerKey(deps.keyPrefix, loc);
  const body: ImportMarker = { ...marker, sent: marker.sent.filter((id) => id !== refused), sentAt: undefined };
  await writeJsonObject(deps, key, body);
}
