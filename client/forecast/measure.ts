/**
 * What a finished batch measured, for `plan --from-batch`: the VMs `status`/`report` list (with the bytes
 * each uploaded), and for each completed VM the times of its steps, read from its workflow history (the
 * activities' scheduled and completed events; no payload is decoded).
 */
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import { batchView } from '../batch-view';
import { mapLimited } from '../map-limited';
import { vmWorkflowId } from '../../common/workflow-ids';
import type { MeasuredVm } from './calibrate';

/** Histories read at most: enough for medians and a fit, bounded for a 10,000-VM batch. */
const SAMPLE = 200;

type Span = { scheduled: number; completed: number };

/** The last completed run of each activity type: when it was scheduled and when it completed. */
function activitySpans(events: temporal.api.history.v1.IHistoryEvent[]): Map<string, Span[]> {
  const scheduled = new Map<string, { type: string; at: number }>();
  const spans = new Map<string, Span[]>();
  for (const e of events) {
    const at = tsToMs(e.eventTime);
    const id = String(e.eventId);
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) scheduled.set(id, { type: sched.activityType?.name ?? '', at });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const s = scheduled.get(String(done.scheduledEventId));
      if (s) spans.set(s.type, [...(spans.get(s.type) ?? []), { scheduled: s.at, completed: at }]);
    }
  }
  return spans;
}

/** One VM's steps from its history. */
export function measuredFromHistory(events: temporal.api.history.v1.IHistoryEvent[], bytes: number): MeasuredVm {
  const spans = activitySpans(events);
  const last = (type: string): Span | undefined => spans.get(type)?.at(-1);
  const seconds = (s: Span | undefined): number | undefined => (s ? (s.completed - s.scheduled) / 1000 : undefined);
  const upload = last('uploadImage');
  const imported = last('importInstance');
  const seen = last('describeConversion');
  const validate = seconds(last('validateInstance'));
  const cleanup = seconds(spans.get('cleanupVm')?.[0]);
  return {
    uploadBytes: bytes,
    convertBytes: bytes,
    preflightSeconds: seconds(last('preflightImage')),
    upload: upload ? [upload.scheduled, upload.completed] : undefined,
    manifestSeconds: seconds(spans.get('writeManifest')?.[0]),
    importSeconds: seconds(imported),
    conversionSeconds: imported && seen ? (seen.completed - imported.completed) / 1000 : undefined,
    validateSeconds: validate === undefined ? undefined : validate + (cleanup ?? 0),
  };
}

export async function measureBatch(client: Client, batch: string): Promise<MeasuredVm[]> {
  const view = await batchView(client, batch);
  const done = view.vms.filter((v) => v.phase === 'Completed' && v.bytesUploaded > 0).slice(0, SAMPLE);
  return mapLimited(done, 8, async (v) => {
    const history = await client.workflow.getHandle(vmWorkflowId(batch, v.name)).fetchHistory();
    return measuredFromHistory(history.events ?? [], v.bytesUploaded);
  });
}
