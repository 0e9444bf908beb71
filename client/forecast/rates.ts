/**
 * What the forecast assumes about a site and about EC2: the uplink, how fast one conversion goes, and how
 * long each fixed step of a VM takes. The defaults and where each comes from are in README.md ("Forecast
 * model"); `plan --from-batch` replaces them with what a finished batch measured (calibrate.ts).
 */

export const GiB = 1024 ** 3;

export interface ForecastRates {
  /** Bytes per second all uploads share (the site's uplink to S3). */
  uplinkBytesPerSecond: number;
  /** Bytes per second one VM's upload reaches at most (its own parts in flight). */
  perUploadBytesPerSecond: number;
  /** A conversion's time per GiB of image (EC2 reads and converts it). */
  conversionSecondsPerGiB: number;
  /** A conversion's time whatever the size (EC2 starts the task, launches and stops the instance). */
  conversionOverheadSeconds: number;
  /** Pre-flight: reading the image's header (holds an upload place). */
  preflightSeconds: number;
  /** Writing the manifest and asking for a conversion slot, after the upload. */
  manifestSeconds: number;
  /** ImportInstance until the task is listed, once a slot is granted. */
  importSeconds: number;
  /** Validation and cleanup once the conversion is seen complete. */
  validateSeconds: number;
  /** The first DescribeConversionTasks after this many seconds, then ×backoff up to max (production's schedule). */
  pollInitialSeconds: number;
  pollBackoff: number;
  pollMaxSeconds: number;
}

/** Sourced in README.md, "Forecast model". */
export const DEFAULT_RATES: ForecastRates = {
  uplinkBytesPerSecond: 125e6,
  perUploadBytesPerSecond: 392e6,
  conversionSecondsPerGiB: 180,
  conversionOverheadSeconds: 600,
  preflightSeconds: 1,
  manifestSeconds: 1,
  importSeconds: 2,
  validateSeconds: 2,
  pollInitialSeconds: 5,
  pollBackoff: 1.5,
  pollMaxSeconds: 300,
};

/** Seconds EC2 spends converting an image of `bytes`. */
export function conversionSeconds(bytes: number, rates: ForecastRates): number {
  return rates.conversionOverheadSeconds + (bytes / GiB) * rates.conversionSecondsPerGiB;
}

/**
 * When the fleet sees a conversion of `seconds` complete: production's poll schedule (first poll after
 * pollInitial, intervals growing by pollBackoff up to pollMax), which once two polls show progress never
 * sleeps past the expected end (workflows/conversion-wait.ts). Progress is assumed linear.
 */
export function conversionSeenAfter(seconds: number, rates: ForecastRates): number {
  let t = rates.pollInitialSeconds;
  let interval = rates.pollInitialSeconds;
  let polledBefore = false;
  for (let polls = 0; polls < 100_000; polls++) {
    if (t >= seconds) return t;
    interval = Math.min(rates.pollMaxSeconds, Math.max(1, interval * rates.pollBackoff));
    if (polledBefore) interval = Math.min(interval, Math.max(rates.pollInitialSeconds, seconds - t));
    polledBefore = true;
    t += interval;
  }
  return t;
}

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };
const BINARY_PREFIX: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * `200MB/s`, `1.5GiB/s`, `10Gbit/s`, `800Mbps` → bytes per second; undefined when it is none of those.
 * A capital B is bytes, a small b or `bit` is bits (as network links are sold).
 */
export function parseRate(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?)(B|b|bit)(?:\/s|ps)\s*$/i.exec(text);
  if (!m) return undefined;
  const [, number, prefix, binary, unit] = m as unknown as [string, string, string, string, string];
  const scale = binary ? BINARY_PREFIX[prefix.toLowerCase()] : PREFIX[prefix.toLowerCase()];
  const bits = unit !== 'B';
  const value = (Number(number) * (scale ?? Number.NaN)) / (bits ? 8 : 1);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** `90`, `90s`, `3m`, `1.5h` → seconds; undefined otherwise. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? 's').toLowerCase();
  return Number(m[1]) * (unit === 'h' ? 3600 : unit === 's' ? 1 : 60);
}

/** `1.2 GiB`, `340 MiB`: sizes as the tables show them. */
export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(n >= 100 * GiB ? 0 : 1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(n >= 100 * 1024 ** 2 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${Math.round(n)} B`;
}

/** `45 s`, `12 min 5 s`, `3 h 20 min`: durations as the tables show them. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

/** `200 MB/s` */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond >= 1e9
    ? `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`
    : `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}
