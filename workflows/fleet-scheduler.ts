/**
 * FleetScheduler: the rules of one batch, as a plain class. It decides which inventory row may start
 * next given what is running and what finished: the window limits (uploads, in flight), waves, the canary,
 * the failure budget, pause/resume and retry. It keeps the batch's progress and hands it back, unchanged
 * in shape, for continue-as-new.
 *
 * It imports nothing from Temporal and does no I/O: the workflow (migrate-fleet.ts) loads inventory rows,
 * starts children, runs timers and wires signals and updates to these methods. Every method is
 * synchronous, so calling it from a handler or the main loop cannot reorder the workflow's commands, and
 * the rules can be tested without a server (test/unit/fleet-scheduler.test.ts).
 *
 * One step of the main loop: `next()` names the row to look at (a re-queued row first, then the next new
 * one); the workflow loads that row; `tryStart()` says whether it may start now and, if so, counts it as
 * running. Ends arrive through `vmEnded()` (signals) and `vmStateObserved()` (reconcile).
 */
import type { VmWorkflowState } from '../activities/fleet';
import { changedLimits, effectiveLimits } from './fleet-limits';
import type { FleetSummary } from './fleet-progress';
import {
  copyProgress,
  currentWave,
  finishedCount,
  initialProgress,
  runningCount,
  uploadingCount,
} from './fleet-progress';
import type {
  FleetInput,
  FleetLimits,
  FleetProgress,
  FleetStatus,
  InventoryRow,
  SetLimitsRequest,
} from '../common/contracts/fleet';

/** The part of the fleet's input the rules read; `progress` is absent on a batch's first run. */
export type FleetRules = Pick<
  FleetInput,
  'batch' | 'total' | 'limits' | 'canary' | 'failureBudgetPercent' | 'progress'
>;

/** How a VM ended, as its own workflow reports it. */
export type VmEnd = 'Completed' | 'Failed' | 'Cancelled';

/** The row the fleet should look at next, named before the row is loaded. */
export interface FleetCandidate {
  /** 0-based inventory row. */
  row: number;
  /** Re-queued by `retry`: it skips the wave and canary gates (not pause or the limits). */
  isRetry: boolean;
}

export class FleetScheduler {
  private readonly progress: FleetProgress;
  private currentLimits: Required<FleetLimits>;
  /** Row of each VM started by this run, to re-queue it on retry (not carried across continue-as-new). */
  private readonly rowOfVm = new Map<string, number>();
  private cancelling = false;

  constructor(private readonly rules: FleetRules) {
    this.progress = rules.progress ? copyProgress(rules.progress) : initialProgress();
    this.currentLimits = effectiveLimits(rules.limits);
  }

  /** The limits in force. */
  get limits(): Required<FleetLimits> {
    return this.currentLimits;
  }

  /** Every row started and every started VM ended. */
  isFinished(): boolean {
    const { progress } = this;
    return progress.nextRow >= this.rules.total && progress.retryQueue.length === 0 && runningCount(progress) === 0;
  }

  /**
   * Settles the canary once all its VMs have finished (it passes only if they all completed, otherwise
   * the batch pauses), then names the row to look at next: the oldest re-queued row, else the next new one.
   */
  next(): FleetCandidate | undefined {
    this.settleCanary();
    const { progress } = this;
    const retryRow = progress.retryQueue[0];
    if (retryRow !== undefined) return { row: retryRow, isRetry: true };
    return progress.nextRow < this.rules.total ? { row: progress.nextRow, isRetry: false } : undefined;
  }

  /**
   * Starts `row` (the loaded `candidate`) if the gates allow it now: pausing and the limits gate every row,
   * the canary and waves gate new rows. A started VM counts as running at once, before its child start
   * resolves, so its first signals are never dropped and the window counts it immediately.
   */
  tryStart(candidate: FleetCandidate, row: InventoryRow): boolean {
    if (!this.gateOpen(row, candidate.isRetry)) return false;
    const { progress } = this;
    if (candidate.isRetry) progress.retryQueue.shift();
    else progress.nextRow += 1;
    progress.running[row.spec.name] = { wave: row.spec.wave, uploaded: false };
    this.rowOfVm.set(row.spec.name, row.row);
    return true;
  }

  /** The child start failed: the VM is not running (the workflow fails the run). */
  startFailed(vm: string): void {
    delete this.progress.running[vm];
  }

  /**
   * The child's workflow ID was taken by an earlier run of this batch. A running VM is adopted (counted as
   * uploaded, since its upload state is unknown and it must not hold an upload place forever); any other
   * state means it completed (the reuse policy only refuses running and completed ones).
   */
  alreadyStarted(vm: string, state: VmWorkflowState | undefined): void {
    const { progress } = this;
    if (state === 'running') {
      const entry = progress.running[vm];
      if (entry) entry.uploaded = true;
    } else {
      delete progress.running[vm];
      progress.completed += 1;
      progress.alreadyDone += 1;
    }
  }

  /** The VM's upload is done: it leaves the upload window but stays in flight. */
  vmUploaded(vm: string): void {
    const entry = this.progress.running[vm];
    if (entry) entry.uploaded = true;
  }

  /**
   * A running VM ended. Returns false for a VM not running (a duplicate or late report), which changes
   * nothing. A failure may exceed the failure budget, which pauses the batch: running VMs go on.
   */
  vmEnded(vm: string, end: VmEnd): boolean {
    const { progress } = this;
    if (!(vm in progress.running)) return false;
    delete progress.running[vm];
    const row = this.rowOfVm.get(vm);
    if (end === 'Completed') progress.completed += 1;
    else if (end === 'Failed') {
      progress.failed += 1;
      if (row !== undefined && !progress.failedRows.includes(row)) progress.failedRows.push(row);
    } else {
      progress.cancelled += 1;
      if (row !== undefined && !progress.cancelledRows.includes(row)) progress.cancelledRows.push(row);
    }
    this.checkFailureBudget();
    return true;
  }

  /**
   * The server's view of a running VM (reconcile finds VMs that ended without telling the fleet, e.g.
   * terminated). A VM the server does not know ('missing') counts as failed. Returns whether it ended.
   */
  vmStateObserved(vm: string, state: VmWorkflowState | undefined): boolean {
    if (state === 'completed') return this.vmEnded(vm, 'Completed');
    if (state === 'failed' || state === 'missing') return this.vmEnded(vm, 'Failed');
    if (state === 'cancelled') return this.vmEnded(vm, 'Cancelled');
    return false;
  }

  pause(reason?: string): void {
    this.progress.paused = true;
    this.progress.pauseReason = reason ?? 'paused by the operator';
  }

  resume(): void {
    this.progress.paused = false;
    this.progress.pauseReason = undefined;
  }

  /**
   * Re-queues the failed and cancelled rows (they start before any new row) and takes them out of the
   * counts. Retrying is the operator's answer to a budget or canary pause, so it lifts those (not a pause
   * the operator asked for). Returns how many rows were re-queued.
   */
  retry(): number {
    const { progress } = this;
    const failed = progress.failedRows.splice(0);
    const cancelled = progress.cancelledRows.splice(0);
    progress.retryQueue.push(...failed, ...cancelled);
    progress.failed -= failed.length;
    progress.cancelled -= cancelled.length;
    if (progress.pauseReason?.startsWith('failure budget') || progress.pauseReason?.startsWith('canary')) {
      this.resume();
    }
    return failed.length + cancelled.length;
  }

  /**
   * Applies a limits change (validated by `validateLimits`). An explicit maxInFlight, in the request or in
   * the run's input, stays; otherwise it follows the other two limits. Returns the limits now in force.
   */
  setLimits(request: SetLimitsRequest): Required<FleetLimits> {
    this.currentLimits = changedLimits(this.currentLimits, this.rules.limits, request);
    return this.currentLimits;
  }

  /** The batch is being cancelled: the status says so from now on. */
  cancel(): void {
    this.cancelling = true;
  }

  /** Names of the VMs started and not ended, in the order they started. */
  runningVms(): string[] {
    return Object.keys(this.progress.running);
  }

  /** What `fleetStatus` returns. */
  status(): FleetStatus {
    const { progress, rules } = this;
    return {
      batch: rules.batch,
      state: this.cancelling ? 'cancelled' : progress.paused ? 'paused' : 'running',
      pauseReason: progress.pauseReason,
      total: rules.total,
      started: progress.nextRow,
      running: this.runningVms(),
      uploading: uploadingCount(progress),
      completed: progress.completed,
      failed: progress.failed,
      cancelled: progress.cancelled,
      currentWave: currentWave(progress),
      limits: this.currentLimits,
      canary: rules.canary,
      canaryPassed: progress.canaryPassed,
      failureBudgetPercent: rules.failureBudgetPercent,
    };
  }

  summary(): FleetSummary {
    const { progress, rules } = this;
    const { completed, failed, cancelled, alreadyDone } = progress;
    return { batch: rules.batch, total: rules.total, completed, failed, cancelled, alreadyDone };
  }

  /** The progress to carry into the next run (continue-as-new input `progress`). */
  snapshot(): FleetProgress {
    return copyProgress(this.progress);
  }

  private gateOpen(row: InventoryRow, isRetry: boolean): boolean {
    const { progress, rules } = this;
    const running = runningCount(progress);
    const { maxUploads, maxInFlight } = this.currentLimits;
    if (progress.paused || uploadingCount(progress) >= maxUploads || running >= maxInFlight) return false;
    if (isRetry) return true;
    if (rules.canary > 0 && !progress.canaryPassed && row.row >= rules.canary) return false;
    // A new wave starts only once the previous one has finished.
    return running === 0 || row.spec.wave === currentWave(progress);
  }

  private settleCanary(): void {
    const { progress, rules } = this;
    if (rules.canary <= 0 || progress.canaryPassed) return;
    if (progress.nextRow < Math.min(rules.canary, rules.total) || runningCount(progress) > 0) return;
    const notCompleted = progress.failed + progress.cancelled;
    if (notCompleted === 0) progress.canaryPassed = true;
    else if (!progress.paused) {
      progress.paused = true;
      const canaryFailed = `canary failed: ${notCompleted} of the first ${rules.canary} VMs did not complete`;
      progress.pauseReason = `${canaryFailed}; fix them and run retry`;
    }
  }

  private checkFailureBudget(): void {
    const { progress, rules } = this;
    const budget = rules.failureBudgetPercent;
    if (budget === undefined || progress.paused) return;
    const finished = finishedCount(progress);
    if (progress.failed * 100 > budget * finished) {
      progress.paused = true;
      const failedOfFinished = `${progress.failed} of ${finished} finished VMs failed`;
      progress.pauseReason = `failure budget exceeded: ${failedOfFinished} (budget ${budget}%)`;
    }
  }
}
