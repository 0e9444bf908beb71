/** `vmconvoy report <batch>`: one row per VM with its outcome, AWS IDs, bytes, times and error. */
import type { Client } from '@temporalio/client';
import type { VmView } from '../batch-view';
import { jsonOption, BATCH_ARGUMENT } from '../options';
import type { ReportFormat, ReportRow } from '../output/report';
import { REPORT_FORMATS, REPORT_VIEW, inspectionCells } from '../output/report';
import type { CommandSpec } from './command';
import { statusCommand } from './status';

export type { ReportRow } from '../output/report';
export { REPORT_COLUMNS } from '../output/report';

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
    duration_s:
      v.startedAt && v.finishedAt ? Math.round((Date.parse(v.finishedAt) - Date.parse(v.startedAt)) / 1000) : null,
    error_type: v.errorType,
    error_message: v.error,
    ...inspectionCells(v.inspection ?? null),
  }));
}

export async function reportCommand(client: Client, batch: string): Promise<ReportRow[]> {
  return reportRows((await statusCommand(client, batch)).vms);
}

export const reportSpec: CommandSpec<{ format: ReportFormat; json?: boolean; out?: string }, ReportRow[]> = {
  name: 'report',
  summary:
    'one row per VM: name, status, instance_id, volume_id, conversion_task_id, bytes_uploaded, started_at, finished_at, duration_s, error_type, error_message',
  arguments: [BATCH_ARGUMENT],
  options: [
    { flags: '--format <format>', description: 'output format', choices: REPORT_FORMATS, default: 'csv' },
    jsonOption('same as --format json'),
    { flags: '--out <file>', description: 'write to this file instead of stdout' },
  ],
  examples: ['vmconvoy report wave-a --format md --out wave-a.md', 'vmconvoy report wave-a --format csv > wave-a.csv'],
  run: async ({ args: [batch] }, ctx) => reportCommand(await ctx.client(), batch!),
  view: REPORT_VIEW,
};
