/**
 * Where a long-lived control workflow (the fleet, the conversion quota) spends its time, read from its
 * histories: how many workflow tasks it ran, how long each waited on the queue and ran on the worker, how
 * many signals it took in and sent, and how long a signal waited before a task handled it. The fleet and
 * the quota each act for every VM of a batch, so these are the figures that say whether they run serially.
 */
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ControlProfile {
  runs: number;
  events: number;
  workflowTasks: number;
  signalsReceived: number;
  signalsSent: number;
  /** Workflow tasks the worker did not complete within their timeout (10 s): the server gives them again. */
  taskTimeouts: number;
  /** WorkflowTaskScheduled → Started, ms. */
  queueMsMean: number;
  queueMsP95: number;
  /** WorkflowTaskStarted → Completed, ms (the worker's time on the task, including its replay if any). */
  runMsMean: number;
  /** A signal's arrival → the completion of the task that handled it, ms. */
  signalMsMean: number;
  signalMsP95: number;
}

const ms = (event: HistoryEvent): number => {
  const t = event.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
};

const p95 = (values: number[]): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]!;
};
const mean = (values: number[]): number =>
  values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;

/** Accumulates the profile of several runs (every run of one workflow ID). */
export class ControlProfiler {
  private runs = 0;
  private events = 0;
  private tasks = 0;
  private received = 0;
  private sent = 0;
  private timeouts = 0;
  private readonly queue: number[] = [];
  private readonly run: number[] = [];
  private readonly signal: number[] = [];

  add(history: { events?: HistoryEvent[] | null }): void {
    const events = history.events ?? [];
    this.runs += 1;
    this.events += events.length;
    let scheduled: number | undefined;
    let started: number | undefined;
    let pendingSignals: number[] = [];
    for (const event of events) {
      switch (event.eventType) {
        case EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
          scheduled = ms(event);
          break;
        case EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
          started = ms(event);
          if (scheduled !== undefined) this.queue.push(started - scheduled);
          break;
        case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: {
          const done = ms(event);
          this.tasks += 1;
          if (started !== undefined) this.run.push(done - started);
          // Signals that arrived before this task started are the ones it handled.
          const handled = pendingSignals.filter((t) => started === undefined || t <= started);
          for (const t of handled) this.signal.push(done - t);
          pendingSignals = pendingSignals.filter((t) => started !== undefined && t > started);
          break;
        }
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
          this.received += 1;
          pendingSignals.push(ms(event));
          break;
        case EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
          this.timeouts += 1;
          break;
        case EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
          this.sent += 1;
          break;
        default:
      }
    }
  }

  profile(): ControlProfile {
    return {
      runs: this.runs,
      events: this.events,
      workflowTasks: this.tasks,
      signalsReceived: this.received,
      signalsSent: this.sent,
      taskTimeouts: this.timeouts,
      queueMsMean: mean(this.queue),
      queueMsP95: p95(this.queue),
      runMsMean: mean(this.run),
      signalMsMean: mean(this.signal),
      signalMsP95: p95(this.signal),
    };
  }
}

/** One line for the log and the notes. */
export function describeProfile(name: string, p: ControlProfile, vms: number): string {
  const per = (n: number): string => (n / vms).toFixed(2);
  return (
    `${name}: ${p.runs} runs, ${p.events} events; ${p.workflowTasks} workflow tasks (${per(p.workflowTasks)} per VM), ` +
    `signals in ${p.signalsReceived} (${per(p.signalsReceived)} per VM), out ${p.signalsSent} (${per(p.signalsSent)} per VM); ` +
    `${p.taskTimeouts} timed out; task queued ${p.queueMsMean.toFixed(0)} ms mean (p95 ${p.queueMsP95.toFixed(0)}), ran ${p.runMsMean.toFixed(0)} ms mean; ` +
    `signal to handled ${p.signalMsMean.toFixed(0)} ms mean (p95 ${p.signalMsP95.toFixed(0)})`
  );
}
