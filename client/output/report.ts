/**
 * `vmconvoy report`: one row per VM as CSV, JSON or a Markdown table. Names, tags and error messages come
 * from the inventory and from AWS, so the CSV is written by csv-stringify with formula cells neutralised (a
 * spreadsheet runs `=HYPERLINK(...)` or `@SUM(...)` in a cell: OWASP "CSV Injection") and Markdown cells are
 * escaped so that links and HTML in a name render as the text they are.
 */
import { stringify } from 'csv-stringify/sync';
import type { InspectionSummary } from '../../common/contracts/migration';
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
  'inspection',
  'guest',
  'inspection_reasons',
  'aws_account_id',
  'aws_region',
] as const;

export type ReportRow = Record<(typeof REPORT_COLUMNS)[number], string | number | null>;

/**
 * The report's inspection cells: the verdict (`skipped by operator` for inspection=skip), what was found
 * (OS, kernel, file system, free bytes) and each reason as `severity rule: message fix`.
 */
export function inspectionCells(
  i: InspectionSummary | null
): Pick<ReportRow, 'inspection' | 'guest' | 'inspection_reasons'> {
  if (!i) return { inspection: null, guest: null, inspection_reasons: null };
  if (i.verdict === 'skipped') return { inspection: 'skipped by operator', guest: null, inspection_reasons: null };
  const guest = [
    i.os,
    i.kernel && `kernel ${i.kernel}`,
    i.fileSystem,
    i.freeBytes !== undefined && `${i.freeBytes} bytes free`,
  ]
    .filter(Boolean)
    .join(', ');
  const reasons = i.reasons.map((r) => `${r.severity} ${r.rule}: ${r.message} ${r.fix}`).join(' | ');
  return { inspection: i.verdict, guest: guest || null, inspection_reasons: reasons || null };
}

export type ReportFormat = 'csv' | 'json' | 'md';
export const REPORT_FORMATS: readonly ReportFormat[] = ['csv', 'json', 'md'];

/**
 * RFC 4180 quoting, and a `'` before a text cell starting with = + - @ tab or CR (or their full-width forms),
 * which a spreadsheet would read as a formula. Numbers stay numbers (a negative one is not a formula).
 */
function renderCsv(rows: ReportRow[]): string {
  const records = rows.map((r) => REPORT_COLUMNS.map((c) => r[c]));
  const csv = stringify(records, { header: true, columns: [...REPORT_COLUMNS], escape_formulas: true });
  return csv.endsWith('\n') ? csv.slice(0, -1) : csv;
}

/**
 * One Markdown table cell as literal text. HTML's `& < >` become entities (every Markdown renderer passes
 * those through, where a backslash is not honoured by all); the characters that start emphasis, code,
 * links, images, strikethrough, math or end a cell get a backslash (CommonMark: any ASCII punctuation may be
 * escaped); `://` and `www.` get one too, so GitHub's bare-URL autolinks do not fire; line breaks become
 * spaces (a row is one line).
 */
export function mdCell(value: string | number | null): string {
  if (value === null) return '';
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_~[\]()|!$]/g, (c) => `\\${c}`)
    .replace(/:\/\//g, '\\://')
    .replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}\\.`)
    .replace(/\r\n|\r|\n/g, ' ');
}

export function renderReport(rows: ReportRow[], format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv') return renderCsv(rows);
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
