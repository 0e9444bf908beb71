/**
 * Rates from what a batch measured (`plan --from-batch`, and `status --watch` as VMs finish): the uplink
 * from the bytes uploaded over the time any upload ran, the conversion time per GiB (and per task, when
 * the sizes differ enough to tell them apart) by least squares, each fixed step as the median of what the
 * VMs took. What was not measured keeps the rate it had.
 */
import type { ForecastRates } from './rates';
import { GiB } from './rates';

/** One VM's measured steps (seconds, or epoch-ms intervals for the upload). */
export interface MeasuredVm {
  uploadBytes: number;
  convertBytes: number;
  preflightSeconds?: number;
  /** [start, end] in ms. */
  upload?: [number, number];
  manifestSeconds?: number;
  importSeconds?: number;
  /** ImportInstance answered → conversion seen complete. */
  conversionSeconds?: number;
  validateSeconds?: number;
}

export interface Calibration {
  rates: ForecastRates;
  /** How many VMs each figure came from, e.g. `uplink from 12 uploads`. */
  basis: string[];
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Length of the union of intervals: time during which at least one upload ran. */
function unionMs(intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [from, to] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const [s, e] of sorted) {
    if (s > to) {
      if (to > from) total += to - from;
      [from, to] = [s, e];
    } else to = Math.max(to, e);
  }
  if (to > from) total += to - from;
  return total;
}

/** c = overhead + perGiB × GiB: least squares when the sizes differ, else all of it per GiB. */
function fitConversion(
  points: Array<{ gib: number; seconds: number }>
): { perGiB: number; overhead: number } | undefined {
  if (points.length === 0) return undefined;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.gib, 0) / n;
  const my = points.reduce((s, p) => s + p.seconds, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.gib - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.gib - mx) * (p.seconds - my), 0);
  // Sizes within 10% of each other cannot separate a fixed part from a per-GiB one.
  if (n >= 3 && sxx > 0 && Math.sqrt(sxx / n) > 0.1 * mx) {
    const perGiB = sxy / sxx;
    const overhead = my - perGiB * mx;
    if (perGiB > 0 && overhead >= 0) return { perGiB, overhead };
  }
  return mx > 0 ? { perGiB: my / mx, overhead: 0 } : undefined;
}

export function calibrate(measured: readonly MeasuredVm[], base: ForecastRates): Calibration {
  const rates = { ...base };
  const basis: string[] = [];
  const uploads = measured.filter((m) => m.upload && m.upload[1] > m.upload[0]);
  const busyMs = unionMs(uploads.map((m) => m.upload!));
  if (uploads.length > 0 && busyMs > 0) {
    rates.uplinkBytesPerSecond = uploads.reduce((s, m) => s + m.uploadBytes, 0) / (busyMs / 1000);
    basis.push(`uplink from ${uploads.length} uploads`);
  }
  const conversions = measured
    .filter((m) => m.conversionSeconds !== undefined && m.convertBytes > 0)
    .map((m) => ({ gib: m.convertBytes / GiB, seconds: m.conversionSeconds! }));
  const fit = fitConversion(conversions);
  if (fit) {
    rates.conversionSecondsPerGiB = fit.perGiB;
    rates.conversionOverheadSeconds = fit.overhead;
    basis.push(`conversion rate from ${conversions.length} conversions`);
  }
  const steps = ['preflightSeconds', 'manifestSeconds', 'importSeconds', 'validateSeconds'] as const;
  for (const step of steps) {
    const m = median(measured.map((v) => v[step]).filter((x): x is number => x !== undefined));
    if (m !== undefined) rates[step] = m;
  }
  if (measured.some((m) => m.importSeconds !== undefined)) basis.push(`fixed steps from ${measured.length} VMs`);
  return { rates, basis };
}
