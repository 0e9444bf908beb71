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
import { slotGrantedSignal } from '../../workflows/messages';
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

/**
 * One VM's steps from its history. A fixed step runs from the end of the step before to the start of the
 * next, so it holds the workflow's own latencies too (tasks, signals): the forecast then adds up to what
 * the VM really took.
 */
export function measuredFromHistory(events: temporal.api.history.v1.IHistoryEvent[], bytes: number): MeasuredVm {
  const spans = activitySpans(events);
  const last = (type: string): Span | undefined => spans.get(type)?.at(-1);
  const began = events.length ? tsToMs(events[0]!.eventTime) : undefined;
  const closed = events.length ? tsToMs(events.at(-1)!.eventTime) : undefined;
  const granted = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === slotGrantedSignal.name);
  const grantedAt = granted ? tsToMs(granted.eventTime) : undefined;
  const upload = last('uploadImage');
  const manifest = spans.get('writeManifest')?.[0];
  const imported = last('importInstance');
  // The conversion ended between the last two looks at it (the last saw it complete): the midpoint, so the
  // forecast's own poll schedule does not count the polling twice.
  const polls = (spans.get('describeConversion') ?? [])
    .map((p) => p.completed)
    .filter((t) => t > (imported?.completed ?? 0));
  const seen = polls.at(-1);
  const before = polls.at(-2) ?? imported?.completed;
  const between = (from: number | undefined, to: number | undefined): number | undefined =>
    from !== undefined && to !== undefined && to >= from ? (to - from) / 1000 : undefined;
  return {
    uploadBytes: bytes,
    convertBytes: bytes,
    preflightSeconds: between(began, upload?.scheduled),
    upload: upload ? [upload.scheduled, upload.completed] : undefined,
    manifestSeconds: between(upload?.completed, manifest?.completed),
    importSeconds: between(
      grantedAt !== undefined && manifest ? Math.max(grantedAt, manifest.completed) : manifest?.completed,
      imported?.completed
    ),
    conversionSeconds:
      imported && seen !== undefined && before !== undefined
        ? ((seen + before) / 2 - imported.completed) / 1000
        : undefined,
    validateSeconds: between(seen, closed),
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
