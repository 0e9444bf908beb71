/** Rendering for people (tables, lines) and machines (JSON, CSV); colours only on a terminal without NO_COLOR. */
import Table from 'cli-table3';
import type { BatchView, VmView } from './batch-view';
import { statusJson } from './batch-view';

export const useColor = (): boolean => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

export function renderStatus(view: BatchView): string {
  const json = statusJson(view);
  const c = json.counts;
  const head = `batch ${view.batch}: ${view.state}${view.pauseReason ? ` (${view.pauseReason})` : ''} — ${view.total} VMs: ` +
    `${c.pending} pending, ${c.uploading} uploading, ${c.converting} converting, ${c.validating} validating, ` +
    `${c.completed} completed, ${c.failed} failed, ${c.cancelled} cancelled`;
  const table = new Table({ head: ['VM', 'phase', '%', 'instance', 'error'], style: { head: useColor() ? ['cyan'] : [], border: useColor() ? ['grey'] : [] } });
  for (const v of view.vms) table.push([v.name, v.phase, String(v.percent), v.instanceId ?? '', (v.error ?? '').slice(0, 80)]);
  return view.vms.length > 0 ? `${head}\n${table.toString()}` : head;
}

export const REPORT_COLUMNS = [
  'name',
  'status',
  'instance_id',
  'volume_id',
  'conversion_task_id',
  'bytes_uploaded',
  'started_at',
  'finished_at',
  'duration_s',
  'error_type',
  'error_message',
] as const;

export type ReportRow = Record<(typeof REPORT_COLUMNS)[number], string | number | null>;

export function reportRows(vms: VmView[]): ReportRow[] {
  return vms.map((v) => ({
    name: v.name,
    status: v.phase,
    instance_id: v.instanceId,
    volume_id: v.volumeId,
    conversion_task_id: v.conversionTaskId,
    bytes_uploaded: v.bytesUploaded,
    started_at: v.startedAt,
    finished_at: v.finishedAt,
    duration_s: v.startedAt && v.finishedAt ? Math.round((Date.parse(v.finishedAt) - Date.parse(v.startedAt)) / 1000) : null,
    error_type: v.errorType,
    error_message: v.error,
  }));
}

function csvCell(value: string | number | null): string {
  const s = value === null ? '' : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderReport(rows: ReportRow[], format: 'csv' | 'json' | 'md'): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv') return [REPORT_COLUMNS.join(','), ...rows.map((r) => REPORT_COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\n');
  const md = (v: string | number | null): string => (v === null ? '' : String(v).replace(/\|/g, '\\|').replace(/\n/g, ' '));
  return [
    `| ${REPORT_COLUMNS.join(' | ')} |`,
    `| ${REPORT_COLUMNS.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${REPORT_COLUMNS.map((c) => md(r[c])).join(' | ')} |`),
  ].join('\n');
}
