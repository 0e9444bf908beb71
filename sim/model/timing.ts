/**
 * How long things take: a conversion's duration (fixed rate, or drawn per GiB from a seeded log-normal
 * distribution), the time EC2 spends reading the image, and listing delays. Every result is in
 * milliseconds and already multiplied by speed.timeScale.
 */
import type { SimConfig } from '../config';

const GiB = 1024 ** 3;

/** A standard normal deviate from two uniform ones (Box–Muller). */
function standardNormal(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) must not happen
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function seconds(speed: SimConfig['speed'], s: number): number {
  return s * 1000 * speed.timeScale;
}

/**
 * Conversion time of an image of `bytes`. With secondsPerGiB set, the per-GiB cost is the median times
 * e^(sigma·N(0,1)): most conversions near the median, a few several times slower, as imports are.
 */
export function conversionMs(bytes: number, speed: SimConfig['speed'], random: () => number): number {
  const s =
    speed.secondsPerGiB > 0
      ? speed.overheadSeconds +
        (bytes / GiB) * speed.secondsPerGiB * Math.exp(speed.secondsPerGiBSigma * standardNormal(random))
      : bytes / speed.conversionBytesPerSecond;
  return seconds(speed, Math.max(speed.minConversionSeconds, s));
}

/** Reading the uploaded image before converting it (the task stays Pending meanwhile). */
export function readMs(bytes: number, speed: SimConfig['speed']): number {
  return speed.readBytesPerSecond > 0 ? seconds(speed, bytes / speed.readBytesPerSecond) : 0;
}

/** How long a new resource stays unlisted: uniform in [min, max] seconds; 0 when max is 0. */
export function listingDelayMs(config: SimConfig, random: () => number): number {
  const { listingDelayMinSeconds: min, listingDelayMaxSeconds: max } = config.consistency;
  if (max <= 0) return 0;
  return seconds(config.speed, min + (max - min) * random());
}
