/**
 * A VM's phases in time, read from its workflow history. The VM status records only the phase it is in
 * now, so the report derives when each phase began from events the history already holds (no workflow
 * change): the scheduling of the activity that opens a phase, and the conversion quota's grant signal.
 * Activity type and signal names are plain text in a history even when payloads are encrypted.
 *
 *   upload      preflightImage / uploadImage scheduled
 *   slot_wait   writeManifest scheduled (the manifest is written, then the VM queues for a slot)
 *   conversion  slotGranted signal, or importInstance scheduled (a batch without a quota)
 *   validation  validateInstance scheduled
 *   cleanup     cleanupVm scheduled (after validation, or on the way out of a failure)
 *
 * A phase ends where the next one begins; the last ends when the workflow closed (or "now" while it
 * runs). Phases only move forward: the manifest rewritten after an interrupted conversion stays in
 * conversion. A phase the VM never entered has no span.
 */

export const REPORT_PHASES = ['upload', 'slot_wait', 'conversion', 'validation', 'cleanup'] as const;
export type ReportPhase = (typeof REPORT_PHASES)[number];

/** The few facts of a history event the phases need (the collector maps Temporal's events to these). */
export interface PhaseEvent {
  /** Epoch milliseconds. */
  time: number;
  kind: 'activity' | 'signal';
  /** Activity type or signal name. */
  name: string;
}

export interface PhaseSpan {
  phase: ReportPhase;
  /** Epoch milliseconds. */
  start: number;
  end: number;
}

const OPENS: Record<PhaseEvent['kind'], Record<string, ReportPhase>> = {
  activity: {
    preflightImage: 'upload',
    uploadImage: 'upload',
    writeManifest: 'slot_wait',
    importInstance: 'conversion',
    describeConversion: 'conversion',
    validateInstance: 'validation',
    cleanupVm: 'cleanup',
  },
  signal: { slotGranted: 'conversion' },
};

/**
 * Spans in phase order. `started` is the workflow's start (the first phase never begins before it);
 * `ended` its close time, or the time of the report for a VM still running.
 */
export function phaseSpans(events: readonly PhaseEvent[], ended: number): PhaseSpan[] {
  const starts: Array<{ phase: ReportPhase; start: number }> = [];
  let reached = -1;
  for (const event of [...events].sort((a, b) => a.time - b.time)) {
    const phase = OPENS[event.kind][event.name];
    if (phase === undefined) continue;
    const order = REPORT_PHASES.indexOf(phase);
    if (order <= reached) continue;
    reached = order;
    starts.push({ phase, start: event.time });
  }
  return starts.map(({ phase, start }, i) => ({
    phase,
    start,
    end: Math.max(start, starts[i + 1]?.start ?? ended),
  }));
}

/** Seconds of each phase, to a tenth of a second (what JSON rows and the HTML's data attributes carry). */
export function phaseSeconds(spans: readonly PhaseSpan[]): Record<ReportPhase, number | null> {
  const out = Object.fromEntries(REPORT_PHASES.map((p) => [p, null])) as Record<ReportPhase, number | null>;
  for (const span of spans) out[span.phase] = Math.round((span.end - span.start) / 100) / 10;
  return out;
}
