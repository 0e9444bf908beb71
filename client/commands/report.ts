/**
 * `vmconvoy report <batch>`: one row per VM with its outcome, AWS IDs, bytes, times, seconds per phase and
 * error; or, with `--format html`, one self-contained page with the summary, a timeline, what was in use
 * over time and the failures (common/batch-report/html.ts).
 */
import type { Client } from '@temporalio/client';
import { jsonOption, BATCH_ARGUMENT } from '../options';
import type { ReportFormat, ReportRow } from '../output/report';
import { REPORT_FORMATS, REPORT_VIEW, inspectionCells } from '../output/report';
import type { InspectionSummary } from '../../common/contracts/migration';
import type { View } from '../output/printer';
import type { BatchReport, VmFacts } from '../../common/batch-report/model';
import type { ReportPhase } from '../../common/batch-report/phases';
import { renderBatchReportHtml } from '../../common/batch-report/html';
import { collectBatchReport } from '../report-html/collect';
import type { CommandSpec } from './command';
import { statusCommand } from './status';

export type { ReportRow } from '../output/report';
export { REPORT_COLUMNS } from '../output/report';

/** A VM and, when its history was read, its seconds per phase. */
type VmRowSource = VmFacts & {
  seconds?: Record<ReportPhase, number | null>;
  inspection?: InspectionSummary | null;
};

/** Seconds per phase, in JSON rows only (the CSV and Markdown columns stay REPORT_COLUMNS). */
export const PHASE_COLUMNS = ['upload_s', 'slot_wait_s', 'conversion_s', 'validation_s', 'cleanup_s'] as const;

export type ReportJsonRow = ReportRow & Partial<Record<(typeof PHASE_COLUMNS)[number], number | null>>;

/** One row per VM; a VM whose history was read also carries its seconds per phase (PHASE_COLUMNS). */
export function reportRows(vms: VmRowSource[]): ReportJsonRow[] {
  return vms.map((v) => {
    const row: ReportJsonRow = {
      name: v.name,
      status: v.phase,
      instance_id: v.instanceId,
      // Every volume of the VM: the root first, then its data volumes (/dev/sdf, ...), separated by ;.
      volume_id: [v.volumeId, ...(v.dataVolumeIds ?? [])].filter(Boolean).join(';') || null,
      conversion_task_id: v.conversionTaskId,
      bytes_uploaded: v.bytesUploaded,
      started_at: v.startedAt,
      finished_at: v.finishedAt,
      duration_s:
        v.startedAt && v.finishedAt ? Math.round((Date.parse(v.finishedAt) - Date.parse(v.startedAt)) / 1000) : null,
      error_type: v.errorType,
      error_message: v.error,
      ...inspectionCells(v.inspection ?? null),
      aws_account_id: v.aws?.accountId ?? null,
      aws_region: v.aws?.region ?? null,
    };
    if (v.seconds) {
      Object.assign(row, {
        upload_s: v.seconds.upload,
        slot_wait_s: v.seconds.slot_wait,
        conversion_s: v.seconds.conversion,
        validation_s: v.seconds.validation,
        cleanup_s: v.seconds.cleanup,
      });
    }
    return row;
  });
}

/** The batch's report, as data (what the HTML draws and the rows are made of). */
export async function batchReportCommand(client: Client, batch: string): Promise<BatchReport> {
  return collectBatchReport(client, await statusCommand(client, batch));
}

export async function reportCommand(client: Client, batch: string): Promise<ReportJsonRow[]> {
  return reportRows((await batchReportCommand(client, batch)).vms);
}

type Format = ReportFormat | 'html';
const FORMATS: readonly Format[] = [...REPORT_FORMATS, 'html'];

/**
 * The rows (csv, md, json), or the whole report for html. The page is rendered by the view, from the
 * report the printer hands it (control characters in names and messages shown as escapes), so the page's
 * own line breaks stay line breaks.
 */
export type ReportOutput = ReportJsonRow[] | { report: BatchReport };

const VIEW: View<ReportOutput, { opts: { format: Format } }> = {
  text: (out, p, call) =>
    Array.isArray(out)
      ? REPORT_VIEW.text(out, p, call as { opts: { format: ReportFormat } })
      : renderBatchReportHtml(out.report),
  json: (out) => (Array.isArray(out) ? out : out.report),
  savedNote: (out, file) =>
    Array.isArray(out)
      ? REPORT_VIEW.savedNote!(out, file)
      : `report of ${out.report.vms.length} VMs written to ${file} (open it in a browser)`,
};

export const reportSpec: CommandSpec<{ format: Format; json?: boolean; out?: string }, ReportOutput> = {
  name: 'report',
  summary:
    'one row per VM: name, status, AWS IDs, bytes, times, seconds per phase, error; or one HTML page with a timeline (--format html)',
  arguments: [BATCH_ARGUMENT],
  options: [
    { flags: '--format <format>', description: 'output format', choices: FORMATS, default: 'csv' },
    jsonOption('same as --format json'),
    { flags: '--out <file>', description: 'write to this file instead of stdout' },
  ],
  examples: [
    'vmconvoy report wave-a --format md --out wave-a.md',
    'vmconvoy report wave-a --format csv > wave-a.csv',
    'vmconvoy report wave-a --format html --out wave-a.html',
  ],
  run: async ({ args: [batch], opts }, ctx) => {
    const report = await batchReportCommand(await ctx.client(), batch!);
    if (opts.format === 'html' && !opts.json) return { report };
    return reportRows(report.vms);
  },
  view: VIEW,
};
