/** `vmconvoy report`: one row per VM as CSV, JSON or a Markdown table. */
import type { View } from './printer';

/** The report's columns, in order (its CSV header; the keys of every JSON row). */
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

export type ReportFormat = 'csv' | 'json' | 'md';
export const REPORT_FORMATS: readonly ReportFormat[] = ['csv', 'json', 'md'];

function csvCell(value: string | number | null): string {
  const s = value === null ? '' : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function mdCell(value: string | number | null): string {
  return value === null ? '' : String(value).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderReport(rows: ReportRow[], format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv')
    return [REPORT_COLUMNS.join(','), ...rows.map((r) => REPORT_COLUMNS.map((c) => csvCell(r[c])).join(','))].join(
      '\n'
    );
  return [
    `| ${REPORT_COLUMNS.join(' | ')} |`,
    `| ${REPORT_COLUMNS.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${REPORT_COLUMNS.map((c) => mdCell(r[c])).join(' | ')} |`),
  ].join('\n');
}

/** `report`: the rows in the chosen format (--json prints them as JSON, like `--format json`). */
export const REPORT_VIEW: View<ReportRow[], { opts: { format: ReportFormat } }> = {
  text: (rows, _p, { opts }) => renderReport(rows, opts.format),
  savedNote: (rows, file) => `${rows.length} VMs written to ${file}`,
};
