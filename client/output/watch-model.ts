/**
 * What `status --watch` shows about each VM and the batch, from successive looks: the phase and since when
 * (as first seen by this watch; `atLeast` when it was already on at the first look), bytes and percent, and
 * an ETA per VM and for the batch from the forecast model (client/forecast/) played forward from where
 * every VM is, with the rates this batch has measured so far (uploads and conversions seen from start to
 * end) in place of the defaults. Pure: the watch loop passes the clock.
 */
import type { BatchView, VmView } from '../batch-view';
import type { Phase } from '../../common/contracts/migration';
import type { MeasuredVm } from '../forecast/calibrate';
import { calibrate } from '../forecast/calibrate';
import type { ForecastRates } from '../forecast/rates';
import { DEFAULT_RATES } from '../forecast/rates';
import type { ForecastVm, Stage, VmProgress } from '../forecast/simulate';
import { forecast } from '../forecast/simulate';
import type { LiveBatch } from './watch-source';

export interface WatchRow {
  name: string;
  phase: Phase;
  percent: number;
  bytesDone: number | null;
  bytesTotal: number | null;
  /** Seconds in this phase; at least that when `atLeast`. */
  inPhase: number;
  atLeast: boolean;
  /** Seconds until the VM ends; null once it has. */
  eta: number | null;
  error: string | null;
  errorType: string | null;
}

export interface WatchState {
  batch: BatchView;
  rows: WatchRow[];
  /** Seconds until the batch ends (null when nothing is left to estimate). */
  eta: number | null;
  /** VMs whose measured steps replaced the default rates. */
  measuredVms: number;
  conversionLimit: number | null;
}

const ENDED: readonly Phase[] = ['Completed', 'Failed', 'Cancelled'];

const STAGE_OF: Partial<Record<Phase, Stage>> = {
  Pending: 'preflight',
  Preflight: 'preflight',
  Uploading: 'upload',
  WaitingForSlot: 'slot',
  Importing: 'import',
  Converting: 'convert',
  Validating: 'validate',
  CleaningUp: 'validate',
};

interface Seen {
  phase: Phase;
  since: number;
  atLeast: boolean;
}

export class WatchTracker {
  private readonly seen = new Map<string, Seen>();
  private readonly measured = new Map<string, MeasuredVm>();
  private looks = 0;

  constructor(private readonly baseRates: ForecastRates = DEFAULT_RATES) {}

  /** Takes in one look at the batch, made at `now` (ms). */
  observe(live: LiveBatch, now: number): WatchState {
    const first = this.looks++ === 0;
    for (const v of live.view.vms) this.track(v, live.bytesTotal.get(v.name), now, first);
    const rates = this.rates();
    const limits = live.view.fleet?.limits;
    const maxConversions = live.conversionLimit ?? limits?.maxConversions ?? 5;
    const known = [...live.bytesTotal.values()];
    const meanSize = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
    const vms: ForecastVm[] = [];
    const progress = new Map<string, VmProgress>();
    for (const v of live.view.vms) {
      const stage = STAGE_OF[v.phase];
      if (!stage) continue;
      const size = live.bytesTotal.get(v.name) ?? meanSize;
      vms.push({ name: v.name, wave: 1, uploadBytes: size, convertBytes: size });
      const seen = this.seen.get(v.name)!;
      const elapsed = (now - seen.since) / 1000;
      if (v.phase === 'Pending') progress.set(v.name, { stage, elapsed: 0 });
      else if (v.phase === 'Uploading' && v.percent >= 100) progress.set(v.name, { stage: 'manifest', elapsed });
      else progress.set(v.name, { stage, elapsed, bytesDone: this.bytesDone(v, live) ?? 0 });
    }
    // VMs the fleet has not started yet: their sizes are not known here, so the mean of those seen.
    const notStarted = Math.max(0, live.view.total - live.view.vms.length);
    for (let i = 0; i < notStarted; i++)
      vms.push({ name: `\u0000pending-${i}`, wave: 1, uploadBytes: meanSize, convertBytes: meanSize });
    const f =
      vms.length > 0
        ? forecast(
            vms,
            rates,
            {
              maxUploads: limits?.maxUploads ?? 4,
              maxConversions,
              maxInFlight: limits?.maxInFlight,
            },
            progress
          )
        : undefined;
    const ends = new Map(f?.vms.map((x) => [x.name, x.end]) ?? []);
    const rows = live.view.vms.map((v): WatchRow => {
      const seen = this.seen.get(v.name)!;
      return {
        name: v.name,
        phase: v.phase,
        percent: this.percent(v, live),
        bytesDone: this.bytesDone(v, live),
        bytesTotal: live.bytesTotal.get(v.name) ?? null,
        inPhase: Math.max(0, (now - seen.since) / 1000),
        atLeast: seen.atLeast,
        eta: ENDED.includes(v.phase) ? null : (ends.get(v.name) ?? null),
        error: v.error,
        errorType: v.errorType,
      };
    });
    return {
      batch: live.view,
      rows,
      eta: f ? f.makespan : null,
      measuredVms: this.measured.size,
      conversionLimit: live.conversionLimit,
    };
  }

  /** The default rates, with what this batch has measured so far in their place. */
  rates(): ForecastRates {
    return this.measured.size > 0 ? calibrate([...this.measured.values()], this.baseRates).rates : this.baseRates;
  }

  private track(v: VmView, size: number | undefined, now: number, first: boolean): void {
    const before = this.seen.get(v.name);
    if (before?.phase === v.phase) return;
    // A VM's first phases start with its workflow, whose start time is known.
    const startedAt = v.startedAt ? Date.parse(v.startedAt) : Number.NaN;
    const fromStart = (v.phase === 'Pending' || v.phase === 'Preflight') && !before && Number.isFinite(startedAt);
    this.seen.set(v.name, {
      phase: v.phase,
      since: fromStart ? Math.min(now, startedAt) : now,
      atLeast: !fromStart && (first || !before),
    });
    if (!before || before.atLeast || size === undefined) return;
    // A phase seen from its start to its end is a measurement.
    const m = this.measured.get(v.name) ?? { uploadBytes: size, convertBytes: size };
    if (before.phase === 'Uploading') m.upload = [before.since, now];
    if (before.phase === 'Converting' && !ENDED.includes(v.phase)) m.conversionSeconds = (now - before.since) / 1000;
    if (m.upload || m.conversionSeconds !== undefined) this.measured.set(v.name, m);
  }

  private bytesDone(v: VmView, live: LiveBatch): number | null {
    const total = live.bytesTotal.get(v.name);
    if (v.phase === 'Uploading') return v.percent >= 100 ? (total ?? null) : (live.bytesSent.get(v.name) ?? null);
    if (STAGE_OF[v.phase] && v.phase !== 'Pending' && v.phase !== 'Preflight') return total ?? null;
    return v.phase === 'Completed' ? v.bytesUploaded || (total ?? null) : null;
  }

  private percent(v: VmView, live: LiveBatch): number {
    const total = live.bytesTotal.get(v.name);
    const sent = live.bytesSent.get(v.name);
    if (v.phase === 'Uploading' && v.percent < 100 && total && sent !== undefined)
      return Math.min(100, Math.floor((sent / total) * 100));
    return v.percent;
  }
}
