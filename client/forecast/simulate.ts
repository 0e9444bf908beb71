/**
 * The forecast: the batch's schedule played forward in time with the fleet's own rules
 * (workflows/fleet-scheduler.ts) and a model of each VM's steps. Pure and deterministic.
 *
 * A VM holds an upload place from pre-flight until its upload ends, and an in-flight place until it ends;
 * rows start in inventory order (waves first) while both windows have room; a later wave starts only once
 * every VM of the one before has ended; with a canary, the rows after it wait until it has finished. All
 * uploads share the uplink equally (each at most its own ceiling); after the upload the VM writes its
 * manifest and queues for one of the account's conversion slots (first come, first served); a slot is
 * held from ImportInstance until the conversion is seen complete by the poll schedule; then validation and
 * cleanup.
 *
 * It also plays a batch under way forward from where each VM is (`progress`), which is how `status --watch`
 * estimates what is left.
 */
import type { Bound, BoundBy } from './bound';
import { makespanBound } from './bound';
import type { ForecastRates } from './rates';
import { conversionSeconds, conversionSeenAfter } from './rates';

export interface ForecastVm {
  name: string;
  wave: number;
  /** Bytes uploaded (the image file). */
  uploadBytes: number;
  /** Bytes EC2 converts. */
  convertBytes: number;
}

export interface ForecastLimits {
  maxUploads: number;
  /** Conversion slots of the account and region. */
  maxConversions: number;
  /** @default maxUploads + 2 × maxConversions, as the fleet fills it in */
  maxInFlight?: number;
  /** @default 0 */
  canary?: number;
}

/** A VM's steps, in order. */
export const STAGES = ['preflight', 'upload', 'manifest', 'slot', 'import', 'convert', 'validate'] as const;
export type Stage = (typeof STAGES)[number];

/** Where a VM of a batch under way is now. */
export interface VmProgress {
  stage: Stage;
  /** Seconds already spent in this stage. */
  elapsed: number;
  /** Upload: bytes already sent. */
  bytesDone?: number;
}

/** Seconds from the forecast's start (null: before it, for a VM already under way). */
export interface VmForecast {
  name: string;
  wave: number;
  uploadBytes: number;
  start: number | null;
  uploadEnd: number | null;
  /** When it asked for a conversion slot. */
  slotRequested: number | null;
  /** ImportInstance (a slot granted). */
  conversionStart: number | null;
  /** The conversion seen complete (the slot given back). */
  conversionEnd: number | null;
  end: number;
}

export interface WaveForecast {
  wave: number;
  vms: number;
  start: number;
  end: number;
  /** The wave's lower bound (bound.ts) with this model's upload and slot times. */
  bound: Bound;
}

export interface Forecast {
  /** Seconds until the last VM ends. */
  makespan: number;
  /** Waves run one after another, so the batch's bound is the sum of theirs. */
  boundSeconds: number;
  /** What bounds the batch: what bounds the waves that weigh most in it. */
  boundBy: BoundBy;
  vms: VmForecast[];
  waves: WaveForecast[];
}

interface Live {
  vm: ForecastVm;
  f: VmForecast;
  stage: Stage | 'done';
  /** End of a fixed stage. */
  until: number;
  /** Upload: bytes left. */
  remaining: number;
}

const EPS = 1e-9;

export function forecast(
  vms: readonly ForecastVm[],
  rates: ForecastRates,
  limits: ForecastLimits,
  progress: ReadonlyMap<string, VmProgress> = new Map()
): Forecast {
  const ordered = [...vms].sort((a, b) => a.wave - b.wave);
  const maxInFlight = limits.maxInFlight ?? limits.maxUploads + 2 * limits.maxConversions;
  const canary = limits.canary ?? 0;
  const slotSeconds = (vm: ForecastVm): number => conversionSeenAfter(conversionSeconds(vm.convertBytes, rates), rates);
  const fixed: Partial<Record<Stage, (vm: ForecastVm) => number>> = {
    preflight: () => rates.preflightSeconds,
    manifest: () => rates.manifestSeconds,
    import: () => rates.importSeconds,
    convert: slotSeconds,
    validate: () => rates.validateSeconds,
  };

  let t = 0;
  const live: Live[] = [];
  const pending: ForecastVm[] = [];
  const slotQueue: Live[] = [];
  const all: Live[] = [];
  let started = 0;
  const enter = (l: Live, stage: Stage | 'done', elapsed = 0): void => {
    l.stage = stage;
    if (stage === 'upload') l.remaining = Math.max(0, l.vm.uploadBytes - (progress.get(l.vm.name)?.bytesDone ?? 0));
    const duration = stage === 'done' ? undefined : fixed[stage];
    if (duration) l.until = t + Math.max(0, duration(l.vm) - elapsed);
    if (stage === 'slot') slotQueue.push(l);
  };
  for (const vm of ordered) {
    const at = progress.get(vm.name);
    if (!at) {
      pending.push(vm);
      continue;
    }
    const f: VmForecast = { ...blank(vm), start: null };
    const l: Live = { vm, f, stage: at.stage, until: 0, remaining: 0 };
    enter(l, at.stage, at.elapsed);
    live.push(l);
    all.push(l);
    started += 1;
  }
  let canaryPassed = canary <= 0 || started >= canary;

  const running = (): number => live.length;
  const uploading = (): number => live.filter((l) => l.stage === 'preflight' || l.stage === 'upload').length;
  const slotsHeld = (): number => live.filter((l) => l.stage === 'import' || l.stage === 'convert').length;
  const currentWave = (): number => Math.max(0, ...live.map((l) => l.vm.wave));

  for (let steps = 0; steps < 10_000_000; steps++) {
    // Instant moves: the fleet starts rows, the quota grants slots.
    if (!canaryPassed && started >= Math.min(canary, vms.length) && running() === 0) canaryPassed = true;
    while (pending.length > 0) {
      const vm = pending[0]!;
      if (uploading() >= limits.maxUploads || running() >= maxInFlight) break;
      if (!canaryPassed && started >= canary) break;
      if (running() > 0 && vm.wave !== currentWave()) break;
      pending.shift();
      const l: Live = { vm, f: { ...blank(vm), start: t }, stage: 'preflight', until: 0, remaining: 0 };
      enter(l, 'preflight');
      live.push(l);
      all.push(l);
      started += 1;
    }
    while (slotQueue.length > 0 && slotsHeld() < limits.maxConversions) {
      const l = slotQueue.shift()!;
      l.f.conversionStart = t;
      enter(l, 'import');
    }
    if (live.length === 0) break;

    // The next moment something ends.
    const uploads = live.filter((l) => l.stage === 'upload');
    const rate = Math.min(rates.perUploadBytesPerSecond, rates.uplinkBytesPerSecond / Math.max(1, uploads.length));
    let next = Infinity;
    for (const l of live) {
      const end = l.stage === 'upload' ? t + l.remaining / rate : l.stage === 'slot' ? Infinity : l.until;
      next = Math.min(next, end);
    }
    if (!Number.isFinite(next)) break; // only VMs waiting for a slot that cannot come (no slots)
    for (const l of uploads) l.remaining = Math.max(0, l.remaining - rate * (next - t));
    t = next;

    for (const l of [...live]) {
      const ended = l.stage === 'upload' ? l.remaining <= EPS * Math.max(1, l.vm.uploadBytes) : l.until <= t + EPS;
      if (!ended || l.stage === 'slot' || l.stage === 'done') continue;
      if (l.stage === 'preflight') enter(l, 'upload');
      else if (l.stage === 'upload') {
        l.f.uploadEnd = t;
        enter(l, 'manifest');
      } else if (l.stage === 'manifest') {
        l.f.slotRequested = t;
        enter(l, 'slot');
      } else if (l.stage === 'import') enter(l, 'convert');
      else if (l.stage === 'convert') {
        l.f.conversionEnd = t;
        enter(l, 'validate');
      } else if (l.stage === 'validate') {
        l.f.end = t;
        enter(l, 'done');
        live.splice(live.indexOf(l), 1);
      }
    }
  }

  const results = all.map((l) => l.f);
  const waves = waveForecasts(ordered, results, rates, limits.maxConversions, slotSeconds);
  return {
    makespan: Math.max(0, ...results.map((f) => f.end)),
    boundSeconds: waves.reduce((s, w) => s + w.bound.seconds, 0),
    boundBy: dominantBound(waves),
    vms: results,
    waves,
  };
}

function blank(vm: ForecastVm): VmForecast {
  return {
    name: vm.name,
    wave: vm.wave,
    uploadBytes: vm.uploadBytes,
    start: null,
    uploadEnd: null,
    slotRequested: null,
    conversionStart: null,
    conversionEnd: null,
    end: Number.NaN,
  };
}

function waveForecasts(
  vms: readonly ForecastVm[],
  results: readonly VmForecast[],
  rates: ForecastRates,
  slots: number,
  slotSeconds: (vm: ForecastVm) => number
): WaveForecast[] {
  const waves = [...new Set(vms.map((v) => v.wave))];
  return waves.map((wave) => {
    const members = vms.filter((v) => v.wave === wave);
    const times = results.filter((f) => f.wave === wave);
    const starts = times.map((f) => f.start ?? 0);
    return {
      wave,
      vms: members.length,
      start: Math.min(...starts),
      end: Math.max(...times.map((f) => f.end)),
      bound: makespanBound(
        members.map((v) => v.uploadBytes / rates.uplinkBytesPerSecond),
        members.map((v) => rates.importSeconds + slotSeconds(v)),
        slots
      ),
    };
  });
}

function dominantBound(waves: readonly WaveForecast[]): BoundBy {
  const weight = new Map<BoundBy, number>();
  for (const w of waves) weight.set(w.bound.boundBy, (weight.get(w.bound.boundBy) ?? 0) + w.bound.seconds);
  return [...weight.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'uplink';
}
