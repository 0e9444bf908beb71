/**
 * Gathers a batch's report from Temporal: the batch view `status` shows (client/batch-view.ts) and, per VM,
 * the phase timestamps its workflow history holds (common/batch-report/phases.ts says which events). Used
 * by `vmconvoy report` and by the fleet's batch-end activity (activities/batch-report.ts), so the report in
 * S3 is the one the CLI prints.
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { BatchView } from '../batch-view';
import { mapLimited } from '../map-limited';
import { vmWorkflowId } from '../../common/workflow-ids';
import type { BatchForecast, BatchReport } from '../../common/batch-report/model';
import { buildBatchReport } from '../../common/batch-report/model';
import type { PhaseEvent, PhaseSpan } from '../../common/batch-report/phases';
import { phaseSpans } from '../../common/batch-report/phases';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

function eventMs(event: HistoryEvent): number {
  const ts = event.eventTime;
  return ts ? Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6) : NaN;
}

/** The events that open phases, as phases.ts reads them. */
export function phaseEventsOf(events: readonly HistoryEvent[]): PhaseEvent[] {
  const out: PhaseEvent[] = [];
  for (const event of events) {
    const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
    const signal = event.workflowExecutionSignaledEventAttributes?.signalName;
    if (activity) out.push({ time: eventMs(event), kind: 'activity', name: activity });
    else if (signal) out.push({ time: eventMs(event), kind: 'signal', name: signal });
  }
  return out;
}

/** The phases of the VM's latest run (the run `status` shows). */
async function vmSpans(client: Client, batch: string, vm: BatchView['vms'][number], now: number): Promise<PhaseSpan[]> {
  try {
    const history = await client.workflow.getHandle(vmWorkflowId(batch, vm.name)).fetchHistory();
    const events = history.events ?? [];
    const closed = vm.finishedAt ? Date.parse(vm.finishedAt) : NaN;
    const last = eventMs(events.at(-1) ?? {});
    // A VM that ended: its close; one still running: now.
    return phaseSpans(phaseEventsOf(events), Number.isFinite(closed) ? closed : vm.finishedAt ? last : now);
  } catch {
    // History gone (past the namespace's retention): the VM keeps its row, without a timeline.
    return [];
  }
}

/**
 * The forecast recorded for the batch, compared with the actual figures in the report. The hook for
 * `vmconvoy plan`: nothing records a forecast yet, so there is none.
 */
export function forecastFor(_view: BatchView): BatchForecast | null {
  return null;
}

export interface CollectOptions {
  /** The report's time. @default now */
  now?: Date;
  /** The conversion limit to draw on the slots chart. @default the running fleet's, if it answers */
  conversionLimit?: number | null;
  /** The batch's state as the caller knows it (the fleet's own end activity: it is ending). */
  state?: string;
}

export async function collectBatchReport(
  client: Client,
  view: BatchView,
  opts: CollectOptions = {}
): Promise<BatchReport> {
  const now = opts.now ?? new Date();
  const spans = new Map<string, PhaseSpan[]>();
  await mapLimited(view.vms, 16, async (vm) => {
    spans.set(vm.name, await vmSpans(client, view.batch, vm, now.getTime()));
  });
  return buildBatchReport({
    batch: view.batch,
    state: opts.state ?? view.state,
    total: view.total,
    vms: view.vms,
    spans,
    generatedAt: now,
    forecast: forecastFor(view),
    conversionLimit: opts.conversionLimit ?? view.fleet?.limits.maxConversions ?? null,
  });
}
