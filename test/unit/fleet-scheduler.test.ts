/**
 * The fleet's rules (FleetScheduler) without a server: the window limits, waves, canary, failure budget,
 * pause/resume, limit changes, retry and the progress carried across continue-as-new. Each test drives the
 * scheduler the way migrateFleetWorkflow's loop does: ask `next()`, hand it the row, `tryStart()`.
 * test/integration/fleet-scheduling.test.ts checks the same rules wired to a real Temporal server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FleetRules } from '../../workflows/fleet-scheduler';
import { FleetScheduler } from '../../workflows/fleet-scheduler';
import type { InventoryRow } from '../../common/contracts/fleet';
import { vmSpecSchema } from '../../common/contracts/migration';

/** One inventory row per entry, named vm-0, vm-1, ... in the given waves. */
function inventory(waves: number[]): InventoryRow[] {
  return waves.map((wave, row) => ({
    row,
    line: row + 2,
    spec: vmSpecSchema.parse({
      name: `vm-${row}`,
      image: `/images/vm-${row}.raw`,
      architecture: 'x86_64',
      instanceType: 'm5.large',
      wave,
    }),
  }));
}

function schedulerFor(rows: InventoryRow[], rules: Partial<FleetRules> = {}): FleetScheduler {
  return new FleetScheduler({
    batch: 'b1',
    total: rows.length,
    limits: { maxUploads: 100, maxConversions: 100 },
    canary: 0,
    ...rules,
  });
}

/** Starts every row the scheduler allows now, as the workflow's loop does; returns the VMs started. */
function startAllowed(scheduler: FleetScheduler, rows: InventoryRow[]): string[] {
  const started: string[] = [];
  for (;;) {
    const candidate = scheduler.next();
    if (!candidate) return started;
    const row = rows[candidate.row];
    assert.ok(row, `the scheduler named row ${candidate.row}, which the inventory does not have`);
    if (!scheduler.tryStart(candidate, row)) return started;
    started.push(row.spec.name);
  }
}

function uploadAll(scheduler: FleetScheduler, vms: string[]): void {
  for (const vm of vms) scheduler.vmUploaded(vm);
}

test('the window holds at most maxUploads uploading and maxInFlight started VMs', () => {
  const rows = inventory(Array<number>(10).fill(1));
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 2, maxConversions: 1 } });
  assert.equal(scheduler.limits.maxInFlight, 4, 'in flight defaults to uploads + 2 × conversions');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1']);
  scheduler.vmUploaded('vm-0');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-2'], 'a finished upload frees one upload place');
  uploadAll(scheduler, ['vm-1', 'vm-2']);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-3'], 'the in-flight window (4) is full before the uploads');
  assert.deepEqual([scheduler.status().uploading, scheduler.status().running.length], [1, 4]);
  scheduler.vmUploaded('vm-unknown');
  assert.deepEqual(startAllowed(scheduler, rows), [], 'an upload report for an unknown VM frees nothing');
  assert.equal(scheduler.vmEnded('vm-0', 'Completed'), true);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-4']);
});

test('a wave starts only after every VM of the previous wave has finished', () => {
  const rows = inventory([1, 1, 1, 2, 2]);
  const scheduler = schedulerFor(rows);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1', 'vm-2']);
  assert.equal(scheduler.status().currentWave, 1);
  scheduler.vmEnded('vm-0', 'Completed');
  scheduler.vmEnded('vm-1', 'Failed');
  assert.deepEqual(startAllowed(scheduler, rows), [], 'wave 2 waits while vm-2 of wave 1 runs');
  scheduler.vmEnded('vm-2', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-3', 'vm-4']);
  assert.equal(scheduler.status().currentWave, 2);
});

test('the canary runs the first N VMs alone and, when they all complete, opens the batch', () => {
  const rows = inventory([1, 1, 1, 1, 1]);
  const scheduler = schedulerFor(rows, { canary: 2 });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1']);
  scheduler.vmEnded('vm-0', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), [], 'the rest waits until every canary VM finished');
  assert.equal(scheduler.status().canaryPassed, false);
  scheduler.vmEnded('vm-1', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-2', 'vm-3', 'vm-4']);
  assert.equal(scheduler.status().canaryPassed, true);
});

test('a failed canary pauses the batch; resume alone pauses it again, retry re-runs it and opens the batch', () => {
  const rows = inventory([1, 1, 1, 1]);
  const scheduler = schedulerFor(rows, { canary: 2 });
  startAllowed(scheduler, rows);
  scheduler.vmEnded('vm-0', 'Failed');
  scheduler.vmEnded('vm-1', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), []);
  const failedCanary = scheduler.status();
  assert.equal(failedCanary.state, 'paused');
  assert.equal(
    failedCanary.pauseReason,
    'canary failed: 1 of the first 2 VMs did not complete; fix them and run retry'
  );
  assert.equal(failedCanary.started, 2);

  scheduler.resume();
  assert.deepEqual(startAllowed(scheduler, rows), [], 'resuming without a retry meets the same failed canary');
  assert.match(scheduler.status().pauseReason ?? '', /^canary failed/);

  assert.equal(scheduler.retry(), 1);
  // The retry is the operator's answer to the failed canary: with no failure left, the canary counts as
  // passed, and the re-queued VM starts first, the rest with it.
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-2', 'vm-3']);
  assert.deepEqual([scheduler.status().state, scheduler.status().canaryPassed], ['running', true]);
});

test('an exceeded failure budget stops new starts; running VMs go on and are counted', () => {
  const rows = inventory(Array<number>(8).fill(1));
  const scheduler = schedulerFor(rows, { failureBudgetPercent: 30, limits: { maxUploads: 3, maxConversions: 1 } });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1', 'vm-2']);
  scheduler.vmEnded('vm-0', 'Failed');
  const overBudget = scheduler.status();
  assert.equal(overBudget.state, 'paused');
  assert.equal(overBudget.pauseReason, 'failure budget exceeded: 1 of 1 finished VMs failed (budget 30%)');
  assert.deepEqual(overBudget.running, ['vm-1', 'vm-2'], 'the VMs already running are not stopped');
  assert.deepEqual(startAllowed(scheduler, rows), []);

  scheduler.vmEnded('vm-1', 'Completed');
  scheduler.vmEnded('vm-2', 'Completed');
  assert.deepEqual([scheduler.status().completed, scheduler.status().failed], [2, 1]);
  assert.equal(scheduler.status().state, 'paused', 'falling back under the budget does not resume by itself');
  assert.deepEqual(startAllowed(scheduler, rows), []);

  scheduler.resume();
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-3', 'vm-4', 'vm-5']);
  scheduler.vmEnded('vm-3', 'Completed');
  assert.equal(scheduler.status().state, 'running', '1 of 4 failed: 25% is within 30%');
  scheduler.vmEnded('vm-4', 'Failed');
  assert.equal(scheduler.status().pauseReason, 'failure budget exceeded: 2 of 5 finished VMs failed (budget 30%)');

  assert.equal(scheduler.retry(), 2, 'retry re-queues both failed VMs');
  assert.equal(scheduler.status().state, 'running', 'and lifts the budget pause');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-4']);
});

test('a failure rate equal to the budget does not pause; no budget never pauses', () => {
  const rows = inventory([1, 1, 1, 1]);
  const withBudget = schedulerFor(rows, { failureBudgetPercent: 50 });
  const withoutBudget = schedulerFor(rows);
  for (const scheduler of [withBudget, withoutBudget]) {
    startAllowed(scheduler, rows);
    scheduler.vmEnded('vm-1', 'Completed');
    scheduler.vmEnded('vm-0', 'Failed');
  }
  assert.equal(withBudget.status().state, 'running', '1 of 2 is 50%, not more');
  assert.equal(withoutBudget.status().state, 'running');
  withoutBudget.vmEnded('vm-2', 'Failed');
  withoutBudget.vmEnded('vm-3', 'Failed');
  assert.equal(withoutBudget.status().state, 'running');
});

test('pause stops new starts and keeps counting running VMs; resume starts again', () => {
  const rows = inventory(Array<number>(6).fill(1));
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 2, maxConversions: 2 } });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1']);
  scheduler.pause('change window');
  assert.deepEqual([scheduler.status().state, scheduler.status().pauseReason], ['paused', 'change window']);
  scheduler.vmEnded('vm-0', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), [], 'a freed place stays free while paused');
  assert.equal(scheduler.status().completed, 1);
  scheduler.pause();
  assert.equal(scheduler.status().pauseReason, 'paused by the operator');
  assert.equal(scheduler.retry(), 0, 'nothing to retry');
  assert.equal(scheduler.status().state, 'paused', 'retry does not lift a pause the operator asked for');
  scheduler.resume();
  assert.deepEqual([scheduler.status().state, scheduler.status().pauseReason], ['running', undefined]);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-2']);
});

test('raising a limit mid-run starts more at once; lowering it starts nothing until VMs drop below it', () => {
  const rows = inventory(Array<number>(12).fill(1));
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 1, maxConversions: 1 } });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0']);
  assert.deepEqual(scheduler.setLimits({ maxUploads: 3 }), { maxUploads: 3, maxConversions: 1, maxInFlight: 5 });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-1', 'vm-2']);

  assert.equal(scheduler.setLimits({ maxUploads: 1 }).maxInFlight, 3, 'a derived in-flight window follows');
  assert.deepEqual(scheduler.status().running, ['vm-0', 'vm-1', 'vm-2'], 'lowering a limit stops no VM');
  uploadAll(scheduler, ['vm-0', 'vm-1']);
  assert.deepEqual(startAllowed(scheduler, rows), [], 'one upload still runs: the lowered limit is full');
  scheduler.vmUploaded('vm-2');
  assert.deepEqual(startAllowed(scheduler, rows), [], 'uploads are free but the in-flight window (3) is full');
  scheduler.vmEnded('vm-0', 'Completed');
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-3']);

  assert.equal(scheduler.setLimits({ maxInFlight: 8 }).maxInFlight, 8);
  assert.equal(scheduler.setLimits({ maxInFlight: 8, maxConversions: 4 }).maxInFlight, 8);
  assert.deepEqual(scheduler.status().limits, { maxUploads: 1, maxConversions: 4, maxInFlight: 8 });
  // Pinned as it has always been (recorded histories replay on it): only the request's or the batch input's
  // maxInFlight counts as explicit, so a later change that leaves it out derives it again.
  assert.equal(scheduler.setLimits({ maxConversions: 2 }).maxInFlight, 5);
});

test("an in-flight window given in the batch's input stays when other limits change", () => {
  const rows = inventory([1, 1]);
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 1, maxConversions: 1, maxInFlight: 1 } });
  assert.equal(scheduler.setLimits({ maxUploads: 5, maxConversions: 5 }).maxInFlight, 1);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0']);
});

test('retry re-queues failed and cancelled VMs ahead of new rows, past the wave gate, counted once', () => {
  const rows = inventory([1, 1, 1, 2, 2]);
  const scheduler = schedulerFor(rows);
  startAllowed(scheduler, rows);
  scheduler.vmEnded('vm-0', 'Failed');
  scheduler.vmEnded('vm-0', 'Failed');
  scheduler.vmEnded('vm-1', 'Cancelled');
  scheduler.vmEnded('vm-2', 'Completed');
  assert.deepEqual(
    [scheduler.status().failed, scheduler.status().cancelled],
    [1, 1],
    'a duplicate end report counts once'
  );
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-3', 'vm-4']);

  assert.equal(scheduler.retry(), 2);
  assert.deepEqual([scheduler.status().failed, scheduler.status().cancelled], [0, 0]);
  assert.deepEqual(scheduler.next(), { row: 0, isRetry: true });
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0', 'vm-1'], 'wave-1 retries start beside wave 2');
  assert.equal(scheduler.retry(), 0, 'a row is re-queued once');
  scheduler.vmEnded('vm-0', 'Failed');
  assert.equal(scheduler.retry(), 1, 'a retried VM that fails again can be retried again');
});

test('retry respects pause and limits', () => {
  const rows = inventory([1, 1, 1]);
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 1, maxConversions: 1, maxInFlight: 1 } });
  startAllowed(scheduler, rows);
  scheduler.vmEnded('vm-0', 'Failed');
  scheduler.pause('hold');
  scheduler.retry();
  assert.deepEqual(startAllowed(scheduler, rows), []);
  scheduler.resume();
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-0']);
  assert.deepEqual(startAllowed(scheduler, rows), [], 'the window of one is full');
});

test('progress: counts, status, summary and the end of the batch', () => {
  const rows = inventory([1, 1, 1, 1]);
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 2, maxConversions: 1 } });
  startAllowed(scheduler, rows);
  scheduler.vmUploaded('vm-0');
  assert.deepEqual(scheduler.status(), {
    batch: 'b1',
    state: 'running',
    pauseReason: undefined,
    total: 4,
    started: 2,
    running: ['vm-0', 'vm-1'],
    uploading: 1,
    completed: 0,
    failed: 0,
    cancelled: 0,
    currentWave: 1,
    limits: { maxUploads: 2, maxConversions: 1, maxInFlight: 4 },
    canary: 0,
    canaryPassed: false,
    failureBudgetPercent: undefined,
  });
  scheduler.vmEnded('vm-0', 'Completed');
  scheduler.vmEnded('vm-1', 'Cancelled');
  startAllowed(scheduler, rows);
  assert.equal(scheduler.isFinished(), false);
  scheduler.vmEnded('vm-2', 'Failed');
  scheduler.vmEnded('vm-3', 'Completed');
  assert.equal(scheduler.next(), undefined, 'every row started');
  assert.equal(scheduler.isFinished(), true);
  assert.deepEqual(scheduler.summary(), {
    batch: 'b1',
    total: 4,
    completed: 2,
    failed: 1,
    cancelled: 1,
    alreadyDone: 0,
  });
  scheduler.retry();
  assert.equal(scheduler.isFinished(), false, 're-queued rows keep the batch open');
  scheduler.cancel();
  assert.equal(scheduler.status().state, 'cancelled');
});

test('VMs an earlier run started are adopted when running and counted when done', () => {
  const rows = inventory([1, 1, 1]);
  const scheduler = schedulerFor(rows, { limits: { maxUploads: 2, maxConversions: 1 } });
  startAllowed(scheduler, rows);
  scheduler.alreadyStarted('vm-0', 'running');
  scheduler.alreadyStarted('vm-1', 'completed');
  const status = scheduler.status();
  assert.deepEqual([status.running, status.uploading], [['vm-0'], 0], 'an adopted VM holds no upload place');
  assert.deepEqual([status.completed, scheduler.summary().alreadyDone], [1, 1]);
  assert.deepEqual(startAllowed(scheduler, rows), ['vm-2']);
  scheduler.startFailed('vm-2');
  assert.deepEqual(scheduler.runningVms(), ['vm-0'], 'a VM whose start failed is not running');
});

test('reconcile: the server reports VMs that ended without a signal; a missing one counts as failed', () => {
  const rows = inventory([1, 1, 1, 1]);
  const scheduler = schedulerFor(rows);
  startAllowed(scheduler, rows);
  assert.equal(scheduler.vmStateObserved('vm-0', 'running'), false);
  assert.equal(scheduler.vmStateObserved('vm-1', undefined), false);
  assert.equal(scheduler.vmStateObserved('vm-1', 'missing'), true);
  assert.equal(scheduler.vmStateObserved('vm-2', 'cancelled'), true);
  assert.equal(scheduler.vmStateObserved('vm-3', 'completed'), true);
  assert.equal(scheduler.vmStateObserved('vm-3', 'completed'), false, 'already counted');
  const { running, completed, failed, cancelled } = scheduler.status();
  assert.deepEqual([running, completed, failed, cancelled], [['vm-0'], 1, 1, 1]);
  assert.equal(scheduler.retry(), 2, 'the missing and the cancelled VM can be retried');
});

test('the progress snapshot has the continue-as-new shape, and a scheduler built from it carries on', () => {
  const rows = inventory([1, 1, 1, 2, 2]);
  const limits = { maxUploads: 2, maxConversions: 1 };
  const first = schedulerFor(rows, { canary: 1, limits });
  startAllowed(first, rows);
  first.vmEnded('vm-0', 'Completed');
  startAllowed(first, rows);
  first.vmUploaded('vm-1');
  first.vmEnded('vm-2', 'Failed');
  first.pause('hold');
  const snapshot = first.snapshot();
  assert.deepEqual(snapshot, {
    nextRow: 3,
    running: { 'vm-1': { wave: 1, uploaded: true } },
    completed: 1,
    failed: 1,
    cancelled: 0,
    failedRows: [2],
    cancelledRows: [],
    retryQueue: [],
    paused: true,
    canaryPassed: true,
    alreadyDone: 0,
    pauseReason: 'hold',
  });
  first.vmEnded('vm-1', 'Completed');
  assert.deepEqual(snapshot.running, { 'vm-1': { wave: 1, uploaded: true } }, 'a snapshot does not move with the run');

  const next = schedulerFor(rows, { canary: 1, limits: first.limits, progress: snapshot });
  snapshot.completed = 99;
  assert.equal(next.status().completed, 1, 'the new run does not share the snapshot it was built from');
  assert.deepEqual([next.status().state, next.status().started], ['paused', 3]);
  next.resume();
  assert.deepEqual(startAllowed(next, rows), [], 'wave 2 waits for vm-1, carried over as running');
  next.vmEnded('vm-1', 'Completed');
  assert.deepEqual(startAllowed(next, rows), ['vm-3', 'vm-4']);
  assert.equal(next.retry(), 1, 'a failure of the earlier run is still retryable');
  assert.deepEqual(next.next(), { row: 2, isRetry: true });
});
