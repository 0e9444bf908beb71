/**
 * The per-VM status: one object the `status` query returns, mirrored into the MigrationPhase search
 * attribute on every phase change and into the workflow's current details (shown in the Web UI).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { vmStatusQuery } from './messages';
import { migrationBatchKey, migrationPhaseKey, migrationVmKey } from './search-attributes';
import type { InspectionSummary, Phase, VmError, VmStatus } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { VM_SLOT_REQUEST_AND_UNINDEXED_PHASES_PATCH } from './versions';

/**
 * Phases that last seconds: they show in the status query and the current details, but are not indexed.
 * Each search-attribute change is a visibility write (and a billed action on Temporal Cloud); operators
 * filter for the phases a VM spends time in.
 */
const UNINDEXED_PHASES: readonly Phase[] = ['Preflight', 'Importing', 'CleaningUp'];

function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${n} B`;
}

/** The inspection a GuestRefused pre-flight failure carries in its details. */
export function inspectionOf(err: unknown): InspectionSummary | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || cause.type !== FailureType.GuestRefused) return undefined;
  const found = cause.details?.[0] as InspectionSummary | undefined;
  return found && typeof found === 'object' && 'verdict' in found ? found : undefined;
}

/** The look inside the guest in the Web UI's details: verdict, what was found, each reason with its fix. */
function inspectionDetails(i: InspectionSummary): string {
  if (i.verdict === 'skipped') return 'guest inspection: skipped by operator (inspection=skip)';
  const found = [
    i.os,
    i.kernel && `kernel ${i.kernel}`,
    i.fileSystem,
    i.freeBytes !== undefined && formatBytes(i.freeBytes) + ' free',
  ]
    .filter(Boolean)
    .join(', ');
  const reasons = i.reasons.map((r) => `\n- ${r.severity} (${r.rule}): ${r.message} ${r.fix}`).join('');
  return `guest inspection: **${i.verdict}**${found ? ` (${found})` : ''}${reasons}`;
}

export class VmStatusTracker {
  readonly status: VmStatus;

  constructor(batch: string, vm: string) {
    this.status = {
      batch,
      vm,
      phase: 'Pending',
      percent: 0,
      bytesUploaded: 0,
      bytesTotal: 0,
      retries: 0,
      startedAt: new Date(workflowInfo().startTime).toISOString(),
      warnings: [],
    };
    setHandler(vmStatusQuery, () => this.status, { description: 'Phase, progress, IDs and last error of this VM.' });
    upsertSearchAttributes([
      { key: migrationBatchKey, value: batch },
      { key: migrationVmKey, value: vm },
      { key: migrationPhaseKey, value: 'Pending' },
    ]);
    this.publish();
  }

  enter(phase: Phase): void {
    if (this.status.phase !== phase) {
      this.status.phase = phase;
      this.status.percent = phase === 'Completed' ? 100 : 0;
      if (!(UNINDEXED_PHASES.includes(phase) && patched(VM_SLOT_REQUEST_AND_UNINDEXED_PHASES_PATCH)))
        upsertSearchAttributes([{ key: migrationPhaseKey, value: phase }]);
    }
    if (phase === 'Completed' || phase === 'Failed' || phase === 'Cancelled') {
      this.status.finishedAt = new Date().toISOString();
    }
    this.publish();
  }

  /** Ownership (issue 15): a failed VM's status names the instances it leaves (stopped) behind. */
  leftBehind(instances: string[]): void {
    if (instances.length === 0) return;
    this.update({
      instanceId: this.status.instanceId ?? instances[0],
      warnings: [
        ...this.status.warnings,
        `instance ${instances.join(', ')} left stopped for inspection; running the VM again adopts or terminates it`,
      ],
    });
  }

  update(patch: Partial<VmStatus>): void {
    Object.assign(this.status, patch);
    this.publish();
  }

  fail(error: VmError): void {
    this.status.lastError = error;
  }

  /** Markdown for the Web UI's "current details"; only names, numbers and AWS IDs. */
  private publish(): void {
    const s = this.status;
    const lines = [`**${s.vm}**: ${s.phase}${s.percent > 0 && s.percent < 100 ? ` ${s.percent}%` : ''}`];
    if (s.aws)
      lines.push(
        `AWS account \`${s.aws.accountId}\` in ${s.aws.region}${s.aws.profile ? ` (profile ${s.aws.profile})` : ''}`
      );
    if (s.bytesTotal > 0) lines.push(`uploaded ${formatBytes(s.bytesUploaded)} of ${formatBytes(s.bytesTotal)}`);
    if (s.conversionTaskId) lines.push(`conversion task \`${s.conversionTaskId}\``);
    if (s.statusMessage) lines.push(`AWS: ${s.statusMessage}`);
    if (s.instanceId) lines.push(`instance \`${s.instanceId}\``);
    for (const d of s.dataVolumes ?? [])
      lines.push(
        `data disk ${d.disk} → ${d.device}: ${d.phase}${d.volumeId ? ` volume \`${d.volumeId}\`` : ''}${d.conversionTaskId ? ` task \`${d.conversionTaskId}\`` : ''}`
      );
    if (s.lastError) lines.push(`error (${s.lastError.type}): ${s.lastError.message}`);
    for (const w of s.warnings) lines.push(`warning: ${w}`);
    if (s.inspection) lines.push(inspectionDetails(s.inspection));
    setCurrentDetails(lines.join('\n\n'));
  }
}
