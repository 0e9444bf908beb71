/** `vmconvoy report`: one row per VM as CSV, JSON or a Markdown table. */
import type { ReportRow } from '../commands/report';
import { REPORT_COLUMNS } from '../commands/report';

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
  if (format === 'csv') return [REPORT_COLUMNS.join(','), ...rows.map((r) => REPORT_COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\n');
  return [
    `| ${REPORT_COLUMNS.join(' | ')} |`,
    `| ${REPORT_COLUMNS.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${REPORT_COLUMNS.map((c) => mdCell(r[c])).join(' | ')} |`),
  ].join('\n');
}
