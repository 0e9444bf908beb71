/**
 * The batch's progress record (FleetProgress, carried across continue-as-new) and what is read from it.
 * Pure functions (no Temporal); FleetScheduler owns the one record of a run and changes it.
 */
import type { FleetProgress } from '../common/contracts/fleet';

/** What migrateFleetWorkflow returns. */
export interface FleetSummary {
  batch: string;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  alreadyDone: number;
}

/** The progress of a batch's first run. Keys in this order: the continue-as-new payload has always had them so. */
export function initialProgress(): FleetProgress {
  return {
    nextRow: 0,
    running: {},
    completed: 0,
    failed: 0,
    cancelled: 0,
    failedRows: [],
    cancelledRows: [],
    retryQueue: [],
    paused: false,
    canaryPassed: false,
    alreadyDone: 0,
  };
}

/** A deep copy with the same keys in the same order. */
export function copyProgress(progress: FleetProgress): FleetProgress {
  const running: FleetProgress['running'] = {};
  for (const [vm, entry] of Object.entries(progress.running)) running[vm] = { ...entry };
  return {
    ...progress,
    running,
    failedRows: [...progress.failedRows],
    cancelledRows: [...progress.cancelledRows],
    retryQueue: [...progress.retryQueue],
  };
}

export function runningCount(progress: FleetProgress): number {
  return Object.keys(progress.running).length;
}

/** VMs started whose upload is not done yet. */
export function uploadingCount(progress: FleetProgress): number {
  return Object.values(progress.running).filter((entry) => !entry.uploaded).length;
}

/** The wave being migrated: the highest wave among running VMs (0 when none runs). */
export function currentWave(progress: FleetProgress): number {
  return Math.max(0, ...Object.values(progress.running).map((entry) => entry.wave));
}

export function finishedCount(progress: FleetProgress): number {
  return progress.completed + progress.failed + progress.cancelled;
}
