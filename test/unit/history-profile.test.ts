/**
 * The scale benchmark's profile of the fleet and quota workflows (bench/history-profile.ts): counted from
 * a history written here event by event, so every figure it reports has a known right answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { ControlProfiler, describeProfile } from '../../bench/history-profile';

const T = temporal.api.enums.v1.EventType;
type EventType = temporal.api.enums.v1.EventType;

/** An event at `ms` milliseconds after the epoch. */
const at = (eventType: EventType, ms: number) =>
  temporal.api.history.v1.HistoryEvent.fromObject({
    eventType,
    eventTime: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
  });

test('the profile counts tasks, signals and timeouts, and times queue, run and signal-to-handled', () => {
  const profiler = new ControlProfiler();
  profiler.add({
    events: [
      at(T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0),
      at(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 0),
      at(T.EVENT_TYPE_WORKFLOW_TASK_STARTED, 100),
      at(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 300),
      // Two signals while no task runs: one task handles both.
      at(T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 1000),
      at(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1000),
      at(T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 1100),
      at(T.EVENT_TYPE_WORKFLOW_TASK_STARTED, 1200),
      // Arrives while that task runs (written after it completes, with its arrival time): the next task's.
      at(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 1500),
      at(T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 1300),
      at(T.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, 1500),
      at(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1500),
      at(T.EVENT_TYPE_WORKFLOW_TASK_STARTED, 1600),
      at(T.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, 11600),
      at(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 11600),
      at(T.EVENT_TYPE_WORKFLOW_TASK_STARTED, 11700),
      at(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 11800),
    ],
  });
  profiler.add({
    events: [
      at(T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 20000),
      at(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 20000),
      at(T.EVENT_TYPE_WORKFLOW_TASK_STARTED, 20500),
      at(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 20600),
    ],
  });
  const p = profiler.profile();
  assert.equal(p.runs, 2);
  assert.equal(p.events, 21);
  assert.equal(p.workflowTasks, 4, 'completed tasks only; the timed-out one is counted apart');
  assert.equal(p.taskTimeouts, 1);
  assert.equal(p.signalsReceived, 3);
  assert.equal(p.signalsSent, 1);
  // Queue waits 100, 200, 100, 100, 500 ms (the timed-out task's too); runs 200, 300, 100, 100 ms.
  assert.equal(p.queueMsMean, 200);
  assert.equal(p.queueMsP95, 500);
  assert.equal(p.runMsMean, 175);
  // Signals at 1000 and 1100 handled at 1500; the one at 1300 by the task completed at 11800.
  assert.equal(p.signalMsMean, (500 + 400 + 10500) / 3);
  assert.equal(p.signalMsP95, 10500);
  assert.match(describeProfile('quota', p, 2), /4 workflow tasks \(2\.00 per VM\).*1 timed out/);
});

test('an empty profile reports zeros, not NaN', () => {
  const p = new ControlProfiler().profile();
  assert.deepEqual(
    [p.workflowTasks, p.queueMsMean, p.queueMsP95, p.runMsMean, p.signalMsMean, p.signalMsP95],
    [0, 0, 0, 0, 0, 0]
  );
});
