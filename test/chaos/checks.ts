/**
 * What a chaos run must prove, computed from the outside: the CLI's status, the simulator's state, the
 * bucket's listing, the bytes the S3 proxy saw, every workflow history and every log line. Each check
 * returns its figures and the problems it found; an empty problem list is a pass.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import type { SimState } from '../helpers/testbed';
import type { PutRecord } from '../helpers/counting-proxy';
import { findSecrets, historyText, PRESIGN_MARKERS } from '../helpers/secret-scan';
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

export function checkConversions(
  vms: ChaosVm[],
  batch: string,
  sim: SimState
): CheckResult<{ tasks: number; instances: number; duplicates: number; describeCalls: number; importCalls: number }> {
  const problems: string[] = [];
  const tasksOf = (vm: string): SimState['tasks'] =>
    sim.tasks.filter((t) => decodeURIComponent(t.manifestUrl).includes(`/${batch}/${vm}/manifest.xml`));
  let duplicates = 0;
  let ours = 0;
  for (const vm of vms) {
    const tasks = tasksOf(vm.name);
    ours += tasks.length;
    if (tasks.length !== 1) {
      duplicates += Math.max(0, tasks.length - 1);
      problems.push(
        `${vm.name}: ${tasks.length} conversion tasks (${tasks.map((t) => `${t.id} ${t.state}`).join(', ')}), expected exactly 1`
      );
      continue;
    }
    const task = tasks[0]!;
    const wanted = vm.expected === 'Completed' ? 'completed' : 'cancelled';
    if (task.state !== wanted) problems.push(`${vm.name}: task ${task.id} is ${task.state}, expected ${wanted}`);
    const instances = sim.instances.filter(
      (i) => i.tags['vmconvoy:vm'] === vm.name && i.tags['vmconvoy:batch'] === batch
    );
    if (vm.expected === 'Completed') {
      if (instances.length !== 1) problems.push(`${vm.name}: ${instances.length} tagged instances, expected exactly 1`);
      else if (instances[0]!.instanceId !== task.instanceId)
        problems.push(`${vm.name}: tagged instance ${instances[0]!.instanceId} is not its task's ${task.instanceId}`);
    } else if (instances.length > 0)
      problems.push(`${vm.name}: failed VM left instances ${instances.map((i) => i.instanceId).join(', ')}`);
  }
  // Every instance the simulator holds belongs to exactly one completed task of ours: nothing orphaned.
  const completedTasks = sim.tasks.filter((t) => t.state === 'completed').length;
  if (sim.instances.length !== completedTasks)
    problems.push(`${sim.instances.length} instances exist for ${completedTasks} completed tasks`);
  return {
    figures: {
      tasks: ours,
      instances: sim.instances.length,
      duplicates,
      describeCalls: sim.calls.DescribeConversionTasks ?? 0,
      importCalls: sim.calls.ImportInstance ?? 0,
    },
    problems,
  };
}

// ---------------------------------------------------------------------------------------------------
// Objects left in the staging bucket
// ---------------------------------------------------------------------------------------------------

export async function checkBucket(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  batch: string
): Promise<CheckResult<{ leftover: number }>> {
  const prefix = `${keyPrefix}${batch}/`;
  const leftover: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) {
      // The batch's stored inventory stays (a relaunch reads it); everything a VM uploaded must be gone.
      if (obj.Key && !obj.Key.startsWith(`${prefix}inventory/`)) leftover.push(obj.Key);
    }
    token = page.NextContinuationToken;
  } while (token);
  return {
    figures: { leftover: leftover.length },
    problems:
      leftover.length > 0
        ? [`${leftover.length} objects left for finished VMs, e.g. ${leftover.slice(0, 3).join(', ')}`]
        : [],
  };
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

/** Log text (the worker's, the CLI's): no presigned URL, no secret, in any line. */
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
        if (line.includes(secret) || line.includes(Buffer.from(secret).toString('base64')))
          problems.push(`${name}:${i + 1}: secret "${secret.slice(0, 4)}…"`);
      }
    });
  }
  return { figures: { logLines }, problems };
}
