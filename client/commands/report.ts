/** `vmconvoy report <batch>`: one row per VM with its outcome, AWS IDs, bytes, times and error. */
import type { Client } from '@temporalio/client';
import type { VmView } from '../batch-view';
import { statusCommand } from './status';

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

export async function reportCommand(client: Client, batch: string): Promise<ReportRow[]> {
  return reportRows((await statusCommand(client, batch)).vms);
}
