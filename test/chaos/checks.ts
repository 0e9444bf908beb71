/**
 * What a chaos run must prove, computed from the outside: the CLI's status, the simulator's state, the
 * bucket's listing, the bytes the S3 proxy saw, every workflow history and every log line. Each check
 * returns its figures and the problems it found; an empty problem list is a pass.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { inventoryKeyFor } from '../../common/inventory-store';
import { batchReportKey, resourceRecordKey } from '../../common/object-keys';
import { quotaStateQuery } from '../../workflows/messages';
import type { SimState } from '../helpers/testbed';
import type { PutRecord } from '../helpers/counting-proxy';
import { findSecrets, historyText, PRESIGN_MARKERS, secretForms } from '../helpers/secret-scan';
import type { DisruptionRecord } from './disruptions';
import type { ChaosVm } from './fleet-inventory';

export interface CheckResult<F> {
  figures: F;
  problems: string[];
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------------

export interface StatusJson {
  state: string;
  counts: Record<string, number>;
  vms: Array<{
    name: string;
    phase: string;
    conversionTaskId: string | null;
    instanceId: string | null;
    error: string | null;
  }>;
}

export function checkOutcomes(
  vms: ChaosVm[],
  status: StatusJson,
  plannedFailure: string
): CheckResult<{ completed: number; failed: number; other: number }> {
  const problems: string[] = [];
  const byName = new Map(status.vms.map((v) => [v.name, v]));
  let completed = 0;
  let failed = 0;
  let other = 0;
  for (const vm of vms) {
    const seen = byName.get(vm.name);
    if (!seen) {
      problems.push(`${vm.name}: missing from the batch status`);
      other += 1;
      continue;
    }
    if (seen.phase === 'Completed') completed += 1;
    else if (seen.phase === 'Failed') failed += 1;
    else other += 1;
    if (seen.phase !== vm.expected)
      problems.push(`${vm.name}: ended ${seen.phase}${seen.error ? ` (${seen.error})` : ''}, expected ${vm.expected}`);
    else if (vm.expected === 'Failed' && !seen.error?.includes(plannedFailure))
      problems.push(`${vm.name}: failed with "${seen.error}", expected the planned "${plannedFailure}"`);
  }
  // A batch whose fleet finished with failed VMs reads "failed"; one with none, "completed".
  const wantedState = vms.some((v) => v.expected === 'Failed') ? 'failed' : 'completed';
  if (status.state !== wantedState) problems.push(`batch state ${status.state}, expected ${wantedState}`);
  return { figures: { completed, failed, other }, problems };
}

// ---------------------------------------------------------------------------------------------------
// Conversion tasks and instances (the simulator's own records)
// ---------------------------------------------------------------------------------------------------

export interface ConversionFigures {
  tasks: number;
  /** Instances not terminated (each the one of a completed VM). */
  instances: number;
  /** Earlier runs' instances the retries terminated. */
  terminatedInstances: number;
  duplicates: number;
  describeCalls: number;
  importCalls: number;
  startCalls: number;
  stopCalls: number;
}

/** Instance states that mean "still running or about to": none may be left at the end. */
const NOT_AT_REST = ['pending', 'running', 'stopping'];

/**
 * Per VM: exactly the conversion tasks its runs needed (one for every VM that completes, however often it
 * ran: a retried VM adopts its earlier task or instance; one per run for a planned failure, each cancelled),
 * and exactly one instance not terminated for a completed VM (its task's), none for a failed one. Across the
 * simulator: no instance left running, and none that no completed VM of ours owns.
 */
export function checkConversions(
  vms: ChaosVm[],
  batch: string,
  sim: SimState,
  /** Runs of a planned failure (2 when the run ends with `vmconvoy retry`). */
  failedRuns = 1
): CheckResult<ConversionFigures> {
  const problems: string[] = [];
  const tasksOf = (vm: string): SimState['tasks'] =>
    sim.tasks.filter((t) => decodeURIComponent(t.manifestUrl).includes(`/${batch}/${vm}/manifest.xml`));
  let duplicates = 0;
  let ours = 0;
  for (const vm of vms) {
    const tasks = tasksOf(vm.name);
    ours += tasks.length;
    const wantedTasks = vm.expected === 'Completed' ? 1 : failedRuns;
    const wantedState = vm.expected === 'Completed' ? 'completed' : 'cancelled';
    const instances = sim.instances.filter(
      (i) => i.tags['vmconvoy:vm'] === vm.name && i.tags['vmconvoy:batch'] === batch && i.state !== 'terminated'
    );
    if (tasks.length !== wantedTasks) {
      duplicates += Math.max(0, tasks.length - wantedTasks);
      problems.push(
        `${vm.name}: ${tasks.length} conversion tasks (${tasks.map((t) => `${t.id} ${t.state}`).join(', ')}), expected exactly ${wantedTasks}`
      );
      continue;
    }
    for (const task of tasks)
      if (task.state !== wantedState)
        problems.push(`${vm.name}: task ${task.id} is ${task.state}, expected ${wantedState}`);
    if (vm.expected === 'Completed') {
      const task = tasks[0]!;
      if (instances.length !== 1)
        problems.push(
          `${vm.name}: ${instances.length} instances not terminated (${instances.map((i) => `${i.instanceId} ${i.state}`).join(', ')}), expected exactly 1`
        );
      else if (instances[0]!.instanceId !== task.instanceId)
        problems.push(`${vm.name}: its instance ${instances[0]!.instanceId} is not its task's ${task.instanceId}`);
    } else if (instances.length > 0)
      problems.push(`${vm.name}: failed VM left instances ${instances.map((i) => i.instanceId).join(', ')}`);
    // Each data disk: exactly one ImportVolume task, completed, and its volume attached to the VM's instance.
    (vm.dataDisks ?? []).forEach((_, n) => {
      const disk = sim.tasks.filter((t) =>
        decodeURIComponent(t.manifestUrl).includes(`/${batch}/${vm.name}/disk-${n + 1}/manifest.xml`)
      );
      ours += disk.length;
      if (disk.length !== 1 || disk[0]!.state !== 'completed') {
        duplicates += Math.max(0, disk.length - 1);
        problems.push(
          `${vm.name} data disk ${n + 1}: ${disk.length} tasks (${disk.map((t) => `${t.id} ${t.state}`).join(', ')}), expected one completed`
        );
        return;
      }
      const volume = sim.volumes.find((v) => v.volumeId === disk[0]!.volumeId);
      if (vm.expected === 'Completed' && (!volume || volume.instanceId !== instances[0]?.instanceId))
        problems.push(
          `${vm.name} data disk ${n + 1}: volume ${disk[0]!.volumeId} is ${volume ? `attached to ${volume.instanceId ?? 'nothing'}` : 'gone'}, expected on ${instances[0]?.instanceId ?? 'its instance'}`
        );
    });
  }
  for (const i of sim.instances.filter((x) => NOT_AT_REST.includes(x.state)))
    problems.push(`instance ${i.instanceId} (${i.tags['vmconvoy:vm'] ?? 'untagged'}) is ${i.state} at the end`);
  // Every instance not terminated belongs to exactly one completed VM of ours: nothing orphaned.
  const live = sim.instances.filter((i) => i.state !== 'terminated');
  const completed = vms.filter((v) => v.expected === 'Completed').length;
  if (live.length !== completed)
    problems.push(`${live.length} instances are not terminated, for ${completed} completed VMs`);
  return {
    figures: {
      tasks: ours,
      instances: live.length,
      terminatedInstances: sim.instances.length - live.length,
      duplicates,
      describeCalls: sim.calls.DescribeConversionTasks ?? 0,
      importCalls: sim.calls.ImportInstance ?? 0,
      startCalls: sim.calls.StartInstances ?? 0,
      stopCalls: sim.calls.StopInstances ?? 0,
    },
    problems,
  };
}

// ---------------------------------------------------------------------------------------------------
// Conversion slots
// ---------------------------------------------------------------------------------------------------

/** The account+region's quota at the end: no slot held or waited for, the limit whole. */
export async function checkQuota(
  client: Client,
  quotaWorkflowId: string,
  limit: number
): Promise<CheckResult<{ holders: number; waiting: number; limit: number }>> {
  const state = await client.workflow.getHandle(quotaWorkflowId).query(quotaStateQuery);
  const problems: string[] = [];
  if (state.holders.length > 0) problems.push(`conversion slots still held at the end by ${state.holders.join(', ')}`);
  if (state.waiting.length > 0)
    problems.push(`still waiting for a conversion slot at the end: ${state.waiting.join(', ')}`);
  if (state.limit !== limit) problems.push(`the conversion limit is ${state.limit}, expected ${limit}`);
  return { figures: { holders: state.holders.length, waiting: state.waiting.length, limit: state.limit }, problems };
}

// ---------------------------------------------------------------------------------------------------
// Objects left in the staging bucket
// ---------------------------------------------------------------------------------------------------

/** Every key under the prefix. */
async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) if (obj.Key) keys.push(obj.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** The resource records that may stay: of these VMs, under the namespace the workers key them with. */
export interface KeptRecords {
  namespace: string;
  /** VMs whose resource record must be there (and may stay). */
  recordsFor: string[];
  /** The batch ended: its report objects must be there (and may stay). */
  batchReport?: boolean;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * What may stay in the bucket: the batch's stored inventory (a relaunch reads it) and the resource record
 * (resources.json) of exactly the VMs that ended Failed or Cancelled with an instance still there (the next
 * run adopts or terminates it). Anything else of the batch is a leak, in either layout (VM folders under
 * `ns=<namespace>/<batch>/`, or `<batch>/` from before the namespace was in keys); a missing record is an
 * instance nobody will adopt or terminate.
 */
export async function checkBucket(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  batch: string,
  kept: KeptRecords = { namespace: 'default', recordsFor: [] }
): Promise<CheckResult<{ leftover: number; records: number }>> {
  const inventory = inventoryKeyFor(keyPrefix, batch);
  const namespaced = new RegExp(`^ns=[^/]+/${escapeRegExp(batch)}/`);
  const ofBatch = (key: string): boolean => {
    const rest = key.slice(keyPrefix.length);
    return rest.startsWith(`${batch}/`) || namespaced.test(rest);
  };
  const records = new Map(
    kept.recordsFor.map((vm) => [resourceRecordKey(keyPrefix, { batch, vm, namespace: kept.namespace }), vm])
  );
  // The batch's own report, written at its end (the record that outlives Temporal's retention).
  const reports = kept.batchReport
    ? new Set(
        (['json', 'html'] as const).map((ext) => batchReportKey(keyPrefix, { batch, namespace: kept.namespace }, ext))
      )
    : new Set<string>();
  const leftover: string[] = [];
  const found = new Set<string>();
  for (const key of await listKeys(s3, bucket, keyPrefix)) {
    if (!ofBatch(key) || key.startsWith(inventory)) continue;
    if (records.has(key) || reports.has(key)) found.add(key);
    else leftover.push(key);
  }
  const problems: string[] = [];
  if (leftover.length > 0)
    problems.push(`${leftover.length} objects left for finished VMs, e.g. ${leftover.slice(0, 3).join(', ')}`);
  for (const [key, vm] of records)
    if (!found.has(key)) problems.push(`${vm}: ended with an instance but its resource record ${key} is missing`);
  for (const key of reports) if (!found.has(key)) problems.push(`the batch's report ${key} is missing`);
  return { figures: { leftover: leftover.length, records: found.size - reports.size }, problems };
}

/**
 * VMs of the status that ended with an instance tagged for them remaining: Failed or Cancelled ones (their
 * record lets a retry adopt or terminate it), or with `completed`, every one (a completed VM's record is
 * what `vmconvoy rollback` reads).
 */
export function vmsKeepingInstances(
  status: StatusJson,
  batch: string,
  sim: SimState,
  { completed = false }: { completed?: boolean } = {}
): string[] {
  return status.vms
    .filter((v) => v.phase === 'Failed' || v.phase === 'Cancelled' || (completed && v.phase === 'Completed'))
    .filter((v) =>
      sim.instances.some(
        (i) => i.tags['vmconvoy:vm'] === v.name && i.tags['vmconvoy:batch'] === batch && i.state !== 'terminated'
      )
    )
    .map((v) => v.name);
}

// ---------------------------------------------------------------------------------------------------
// Bytes uploaded again
// ---------------------------------------------------------------------------------------------------

export interface ReuploadFigures {
  imageBytes: number;
  partBytesSent: number;
  reuploadedBytes: number;
  /** Bytes sent again after each disruption (until the next), with what was in flight when it struck. */
  perDisruption: Array<{ kind: string; during: string; partsInFlight: number; reuploadedBytes: number }>;
  boundBytes: number;
}

/**
 * A part PUT to a key that had been PUT before is a re-upload; it is charged to the last disruption before
 * it. Each disruption may cost at most the parts that can be in flight at once (uploads × lanes × part).
 */
export function checkReuploads(
  puts: PutRecord[],
  partPath: RegExp,
  disruptions: DisruptionRecord[],
  imageBytes: number,
  bound: { maxUploads: number; uploadConcurrency: number; partSizeBytes: number }
): CheckResult<ReuploadFigures> {
  const problems: string[] = [];
  const boundBytes = bound.maxUploads * bound.uploadConcurrency * bound.partSizeBytes;
  const seen = new Set<string>();
  const charged = new Array<number>(disruptions.length).fill(0);
  let before = 0;
  let partBytesSent = 0;
  for (const put of [...puts].sort((a, b) => a.at - b.at)) {
    if (!partPath.test(put.path)) continue;
    partBytesSent += put.bytes;
    if (!seen.has(put.path)) {
      seen.add(put.path);
      continue;
    }
    let index = -1;
    for (let i = 0; i < disruptions.length; i++) if (disruptions[i]!.at <= put.at) index = i;
    if (index < 0) before += put.bytes;
    else charged[index]! += put.bytes;
  }
  if (before > 0) problems.push(`${(before / MiB).toFixed(1)} MiB uploaded again with no disruption before it`);
  const perDisruption = disruptions.map((d, i) => ({
    kind: d.kind,
    during: d.during,
    partsInFlight: d.partsInFlight,
    reuploadedBytes: charged[i]!,
  }));
  for (const d of perDisruption) {
    if (d.reuploadedBytes > boundBytes) {
      problems.push(
        `${d.kind} during ${d.during}: ${(d.reuploadedBytes / MiB).toFixed(1)} MiB uploaded again, bound ${(boundBytes / MiB).toFixed(0)} MiB`
      );
    }
  }
  const reuploadedBytes = before + charged.reduce((a, b) => a + b, 0);
  return { figures: { imageBytes, partBytesSent, reuploadedBytes, perDisruption, boundBytes }, problems };
}

// ---------------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------------

export interface SecretFigures {
  histories: number;
  events: number;
  logLines: number;
}

/** Every run of every workflow of the batch (fleet, VMs) and of the given others (the quota workflow). */
export async function checkHistories(
  client: Client,
  batch: string,
  otherIds: string[],
  secrets: string[]
): Promise<CheckResult<Omit<SecretFigures, 'logLines'>>> {
  const problems: string[] = [];
  const runs: Array<{ workflowId: string; runId: string }> = [];
  for await (const wf of client.workflow.list({ query: `MigrationBatch = "${batch}"` }))
    runs.push({ workflowId: wf.workflowId, runId: wf.runId });
  for (const id of otherIds) {
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${id}"` }))
      runs.push({ workflowId: wf.workflowId, runId: wf.runId });
  }
  let events = 0;
  for (const run of runs) {
    const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    events += history.events?.length ?? 0;
    for (const f of findSecrets(run.workflowId, historyText(history).join('\n'), secrets))
      problems.push(`history of ${f.workflowId}: ${f.what}`);
  }
  return { figures: { histories: runs.length, events }, problems };
}

/** Log text (the worker's, the CLI's): no presigned URL, no secret in any of its forms, in any line. */
export function checkLogs(
  sources: Array<{ name: string; text: string }>,
  secrets: string[]
): CheckResult<{ logLines: number }> {
  const problems: string[] = [];
  let logLines = 0;
  for (const { name, text } of sources) {
    const lines = text.split('\n');
    logLines += lines.length;
    lines.forEach((line, i) => {
      for (const marker of PRESIGN_MARKERS)
        if (marker.test(line)) problems.push(`${name}:${i + 1}: presigned URL (${marker.source})`);
      for (const secret of secrets) {
        // As is, base64 (user data in a request) and percent-encoded (inside a URL or a form body).
        if (secretForms(secret).some((form) => line.includes(form)))
          problems.push(`${name}:${i + 1}: secret "${secret.slice(0, 4)}…"`);
      }
    });
  }
  return { figures: { logLines }, problems };
}
