/**
 * What the CLI knows of a batch: the fleet workflow (its live status, or how it closed) and every VM
 * workflow of the batch, found through the MigrationBatch search attribute, with each VM's phase,
 * progress, AWS IDs and error. Used by `status`, `start --wait` and `report`.
 */
import { ExitError } from './errors';
import { mapLimited } from './map-limited';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { migrationPhaseKey } from '../workflows/search-attributes';
import type { FleetStatus } from '../common/contracts/fleet';
import { fleetStatusQuery, vmStatusQuery } from '../workflows/messages';
import type { AwsAccount, InspectionSummary, MigrateVmResult, Phase } from '../common/contracts/migration';
import { parseVmWorkflowId } from '../common/workflow-ids';
import { activityQueueHasPollers, siteWaitingText } from './queue-pollers';

/** Whether a task queue has activity pollers, asked once per queue per look at the batch. */
type PollerCheck = (taskQueue: string) => Promise<boolean | undefined>;

export interface VmView {
  name: string;
  phase: Phase;
  percent: number;
  conversionTaskId: string | null;
  instanceId: string | null;
  volumeId: string | null;
  /** Data volumes (/dev/sdf, /dev/sdg, ...), as far as known; absent: none. */
  dataVolumeIds?: string[];
  bytesUploaded: number;
  error: string | null;
  errorType: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Pre-flight's look inside the guest (null: not done yet, or a VM from before it). */
  inspection?: InspectionSummary | null;
  /** The VM's site (inventory column `site`), when it has one. */
  site?: string;
  /** Why a VM makes no progress although it runs, e.g. "waiting for a worker of site dc3". */
  waiting?: string;
  /** --- accounts (issue 20): the AWS account and Region the VM imports into (absent: VMs from before). */
  aws?: AwsAccount;
}

export interface BatchView {
  batch: string;
  state: 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'unknown';
  pauseReason?: string;
  total: number;
  fleet?: FleetStatus;
  vms: VmView[];
}

async function vmView(client: Client, wf: WorkflowExecutionInfo, hasPollers: PollerCheck): Promise<VmView> {
  const name = parseVmWorkflowId(wf.workflowId)?.vm ?? wf.workflowId;
  const phase = (wf.typedSearchAttributes.get(migrationPhaseKey) ?? 'Pending') as Phase;
  const view: VmView = {
    name,
    phase,
    percent: phase === 'Completed' ? 100 : 0,
    conversionTaskId: null,
    instanceId: null,
    volumeId: null,
    bytesUploaded: 0,
    error: null,
    errorType: null,
    startedAt: wf.startTime.toISOString(),
    finishedAt: wf.closeTime?.toISOString() ?? null,
    inspection: null,
  };
  const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
  try {
    if (wf.status.name === 'RUNNING') {
      const s = await handle.query(vmStatusQuery);
      Object.assign(view, {
        phase: s.phase,
        percent: s.percent,
        conversionTaskId: s.conversionTaskId ?? null,
        instanceId: s.instanceId ?? null,
        volumeId: s.volumeId ?? null,
        dataVolumeIds: s.dataVolumes?.map((d) => d.volumeId ?? `(${d.device} ${d.phase})`),
        bytesUploaded: s.bytesUploaded,
        error: s.lastError?.message ?? null,
        errorType: s.lastError?.type ?? null,
        finishedAt: s.finishedAt ?? null,
        inspection: s.inspection ?? null,
      });
      if (s.aws) view.aws = s.aws;
      // A VM of a site waits at pre-flight (or for its upload to resume) while no worker of the site runs.
      if (s.site) {
        view.site = s.site.name;
        if ((s.phase === 'Preflight' || s.phase === 'Uploading') && (await hasPollers(s.site.taskQueue)) === false)
          view.waiting = siteWaitingText(s.site.name);
      }
    } else if (wf.status.name === 'COMPLETED') {
      const r = (await handle.result()) as MigrateVmResult;
      Object.assign(view, {
        phase: 'Completed',
        percent: 100,
        conversionTaskId: r.conversionTaskId || null,
        instanceId: r.instanceId || null,
        volumeId: r.volumeId || null,
        dataVolumeIds: r.dataVolumeIds,
        bytesUploaded: r.bytesUploaded,
        inspection: r.inspection ?? null,
      });
      if (r.aws) view.aws = r.aws;
    } else {
      view.phase = wf.status.name === 'CANCELLED' ? 'Cancelled' : 'Failed';
      await handle.result().catch((err: unknown) => {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        view.error = cause?.message ?? (err as Error).message;
        view.errorType =
          (cause as { type?: string } | undefined)?.type ?? (view.phase === 'Cancelled' ? 'Cancelled' : wf.status.name);
        // The workflow's failure carries the inspection as its details (workflows/migrate-vm.ts).
        const details = (cause as { details?: unknown[] } | undefined)?.details?.[0];
        if (details && typeof details === 'object' && 'verdict' in details)
          view.inspection = details as InspectionSummary;
        const aws = (cause as { details?: unknown[] } | undefined)?.details?.[1];
        if (aws && typeof aws === 'object' && 'accountId' in aws) view.aws = aws as AwsAccount;
      });
    }
  } catch (err) {
    // Encrypted payloads and no key: every detail would be missing, so say what to set instead.
    if (isEncryptedPayloadError(err)) throw new ExitError(1, ENCRYPTED_HINT);
    // A query can fail while the VM moves between workers; the listing's phase still stands.
  }
  return view;
}

const ENCRYPTED_HINT =
  "this batch's payloads are encrypted (binary/encrypted): set VMCONVOY_CODEC_KEY (and VMCONVOY_CODEC_KEY_ID / VMCONVOY_CODEC_OLD_KEYS) to the workers' key";

function isEncryptedPayloadError(err: unknown): boolean {
  for (let e = err as (Error & { cause?: unknown }) | undefined; e; e = e.cause as typeof e) {
    if (/binary\/encrypted/.test(String(e.message))) return true;
  }
  return false;
}

export async function batchView(client: Client, batch: string): Promise<BatchView> {
  const fleet = client.workflow.getHandle(batch);
  let state: BatchView['state'] = 'unknown';
  let total = 0;
  let fleetStatus: FleetStatus | undefined;
  const described = await fleet.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  });
  if (described) {
    total = Number((described.memo?.total as number | undefined) ?? 0);
    const closed = described.status.name;
    if (closed === 'RUNNING') {
      state = 'running';
      // The query needs a worker; without one the listing below still tells the phases.
      fleetStatus = await fleet.query(fleetStatusQuery).catch(() => undefined);
      if (fleetStatus) {
        state = fleetStatus.state === 'paused' ? 'paused' : 'running';
        total = fleetStatus.total;
      }
    } else state = closed === 'COMPLETED' ? 'completed' : closed === 'CANCELLED' ? 'cancelled' : 'failed';
  }
  // The latest run of each VM (a retried VM has several).
  const latest = new Map<string, WorkflowExecutionInfo>();
  for await (const wf of client.workflow.list({
    query: `MigrationBatch = "${batch}" AND WorkflowType = "migrateVmWorkflow"`,
  })) {
    const prev = latest.get(wf.workflowId);
    if (!prev || prev.startTime < wf.startTime) latest.set(wf.workflowId, wf);
  }
  const checks = new Map<string, Promise<boolean | undefined>>();
  const hasPollers: PollerCheck = (queue) => {
    if (!checks.has(queue)) checks.set(queue, activityQueueHasPollers(client, queue));
    return checks.get(queue)!;
  };
  const vms = (await mapLimited([...latest.values()], 16, (wf) => vmView(client, wf, hasPollers))).sort((a, b) =>
    a.name.localeCompare(b.name)
  );
  if (state === 'completed' && vms.some((v) => v.phase === 'Failed')) state = 'failed';
  return {
    batch,
    state,
    pauseReason: fleetStatus?.pauseReason,
    total: Math.max(total, vms.length),
    fleet: fleetStatus,
    vms,
  };
}

/** A batch that no longer changes. */
export function batchEnded(view: BatchView): boolean {
  return view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled';
}

export interface StatusJson {
  batch: string;
  state: BatchView['state'];
  counts: {
    pending: number;
    uploading: number;
    converting: number;
    validating: number;
    completed: number;
    failed: number;
    cancelled: number;
  };
  vms: Array<{
    name: string;
    phase: Phase;
    percent: number;
    conversionTaskId: string | null;
    instanceId: string | null;
    error: string | null;
    inspection: InspectionSummary | null;
    /** Only for VMs with a site / VMs waiting for a worker (see VmView). */
    site?: string;
    waiting?: string;
    /** The VM's AWS account and Region (absent: VMs from before accounts). */
    aws?: AwsAccount;
  }>;
}

/**
 * The `status --json` contract. uploading = Preflight+Uploading; converting = WaitingForSlot+Importing+
 * Converting; validating = Validating+CleaningUp; pending = VMs without a workflow yet, plus VMs whose
 * workflow has not left Pending (so the counts add up to the batch's size).
 */
export function statusJson(view: BatchView): StatusJson {
  const count = (phases: Phase[]): number => view.vms.filter((v) => phases.includes(v.phase)).length;
  const started = view.vms.length;
  return {
    batch: view.batch,
    state: view.state,
    counts: {
      pending: view.total - started + count(['Pending']),
      uploading: count(['Preflight', 'Uploading']),
      converting: count(['WaitingForSlot', 'Importing', 'Converting']),
      validating: count(['Validating', 'CleaningUp']),
      completed: count(['Completed']),
      failed: count(['Failed']),
      cancelled: count(['Cancelled']),
    },
    vms: view.vms.map((v) => ({
      name: v.name,
      phase: v.phase,
      percent: v.percent,
      conversionTaskId: v.conversionTaskId,
      instanceId: v.instanceId,
      error: v.error,
      inspection: v.inspection ?? null,
      ...(v.site ? { site: v.site } : {}),
      ...(v.waiting ? { waiting: v.waiting } : {}),
      ...(v.aws ? { aws: v.aws } : {}),
    })),
  };
}
