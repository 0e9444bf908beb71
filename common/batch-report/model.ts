/**
 * The batch report as data: what `vmconvoy report` prints (its rows), what the HTML report draws, and what
 * the fleet stores in S3 at batch end. Pure (no Temporal, no I/O): the CLI and the batch-end activity
 * gather the facts (client/report-html/collect.ts) and both build the report here, so the two never differ.
 */
import type { PhaseSpan, ReportPhase } from './phases';
import { phaseSeconds } from './phases';
import { fixFor } from './remedies';
import type { AwsAccount } from '../aws/targets';

/** What is known of one VM (the CLI's VmView has these fields). */
export interface VmFacts {
  name: string;
  phase: string;
  instanceId: string | null;
  volumeId: string | null;
  /** Data volumes attached at /dev/sdf, /dev/sdg, ... (absent: none). */
  dataVolumeIds?: string[];
  conversionTaskId: string | null;
  bytesUploaded: number;
  error: string | null;
  errorType: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** --- accounts (issue 20): the AWS account and Region the VM imports into (absent: VMs from before). */
  aws?: AwsAccount;
}

/**
 * The forecast the batch was planned with (`vmconvoy plan`), when one was recorded. Nothing records one
 * yet: `forecastFor` in collect.ts is the hook that will load it; until then the report shows actuals only.
 */
export interface BatchForecast {
  /** Expected makespan in seconds. */
  makespanSeconds: number;
  /** What bounds it (uplink, quota, one large VM). */
  boundBy?: string;
}

export interface ReportVm extends VmFacts {
  /** Phases in time (epoch ms), in order. */
  spans: PhaseSpan[];
  /** Seconds per phase, to a tenth; null for a phase the VM never entered. */
  seconds: Record<ReportPhase, number | null>;
}

export interface ReportFailure {
  name: string;
  errorType: string;
  /** The message as it came (AWS's own words where AWS refused). */
  message: string;
  /** The operator's next step. */
  fix: string;
}

export interface BatchReport {
  /** Identifies the JSON layout for readers of the stored copy. */
  schema: 'vmconvoy.batch-report/1';
  batch: string;
  state: string;
  generatedAt: string;
  summary: {
    total: number;
    completed: number;
    failed: number;
    cancelled: number;
    /** Not ended yet (the report of a running batch). */
    inProgress: number;
    bytesUploaded: number;
    startedAt: string | null;
    endedAt: string | null;
    durationSeconds: number | null;
  };
  forecast: BatchForecast | null;
  /** Conversions allowed at once in the batch's account and region, when known. */
  conversionLimit: number | null;
  vms: ReportVm[];
  failures: ReportFailure[];
}

export interface ReportInput {
  batch: string;
  state: string;
  /** VMs in the inventory (VMs not started yet have no facts). */
  total: number;
  vms: VmFacts[];
  /** Phase spans by VM name. */
  spans: Map<string, PhaseSpan[]>;
  generatedAt: Date;
  forecast?: BatchForecast | null;
  conversionLimit?: number | null;
}

export function buildBatchReport(input: ReportInput): BatchReport {
  const vms: ReportVm[] = input.vms.map((v) => {
    const spans = input.spans.get(v.name) ?? [];
    return { ...v, spans, seconds: phaseSeconds(spans) };
  });
  const count = (phase: string): number => vms.filter((v) => v.phase === phase).length;
  const starts = vms.map((v) => v.spans[0]?.start ?? (v.startedAt ? Date.parse(v.startedAt) : NaN));
  const ends = vms.map((v) => v.spans.at(-1)?.end ?? (v.finishedAt ? Date.parse(v.finishedAt) : NaN));
  const first = Math.min(...starts.filter(Number.isFinite));
  const last = Math.max(...ends.filter(Number.isFinite));
  const completed = count('Completed');
  const failed = count('Failed');
  const cancelled = count('Cancelled');
  return {
    schema: 'vmconvoy.batch-report/1',
    batch: input.batch,
    state: input.state,
    generatedAt: input.generatedAt.toISOString(),
    summary: {
      total: Math.max(input.total, vms.length),
      completed,
      failed,
      cancelled,
      inProgress: Math.max(input.total, vms.length) - completed - failed - cancelled,
      bytesUploaded: vms.reduce((sum, v) => sum + v.bytesUploaded, 0),
      startedAt: Number.isFinite(first) ? new Date(first).toISOString() : null,
      endedAt: Number.isFinite(last) ? new Date(last).toISOString() : null,
      durationSeconds: Number.isFinite(first) && Number.isFinite(last) ? Math.round((last - first) / 100) / 10 : null,
    },
    forecast: input.forecast ?? null,
    conversionLimit: input.conversionLimit ?? null,
    vms,
    failures: vms
      .filter((v) => v.phase === 'Failed')
      .map((v) => ({
        name: v.name,
        errorType: v.errorType ?? 'Error',
        message: v.error ?? '',
        fix: fixFor(v.errorType),
      })),
  };
}
