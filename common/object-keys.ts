/**
 * Where one VM's objects live in the staging bucket. Deterministic (no random prefix), so a new run of the
 * same VM finds and reuses the parts an earlier run uploaded, and cleanup knows exactly what to delete.
 *
 *   <keyPrefix><batch>/<vm>/image.part<N>
 *   <keyPrefix><batch>/<vm>/manifest.xml
 *   <keyPrefix><batch>/<vm>/import-requested   (ImportInstance may have been sent for this manifest; by whom)
 */
import type { ObjectLocation } from './contracts/migration';

/** The VM's folder, with its trailing slash: `b/vm1/` never matches `b/vm10/...`. */
export function vmPrefix(keyPrefix: string, loc: ObjectLocation): string {
  return `${keyPrefix}${loc.batch}/${loc.vm}/`;
}

export function partKey(keyPrefix: string, loc: ObjectLocation, index: number): string {
  return `${vmPrefix(keyPrefix, loc)}image.part${index}`;
}

export function manifestKey(keyPrefix: string, loc: ObjectLocation): string {
  return `${vmPrefix(keyPrefix, loc)}manifest.xml`;
}

/**
 * Written just before ImportInstance is sent, deleted with the VM's other objects: while it exists, an
 * earlier attempt may have created a conversion task that must be found before another is created. It
 * holds the activity execution that sent and hashes of the manifest URLs it sent (ec2-import.ts).
 */
export function importMarkerKey(keyPrefix: string, loc: ObjectLocation): string {
  return `${vmPrefix(keyPrefix, loc)}import-requested`;
}

export interface PartRange {
  index: number;
  /** First byte. */
  start: number;
  /** Last byte, inclusive (as the manifest's byte-range@end). */
  end: number;
  length: number;
}

/** The parts an image of `imageBytes` splits into; contiguous, covering every byte exactly once. */
export function partRanges(imageBytes: number, partSizeBytes: number): PartRange[] {
  if (!Number.isSafeInteger(imageBytes) || imageBytes <= 0)
    throw new RangeError(`image size must be a positive integer, got ${imageBytes}`);
  if (!Number.isSafeInteger(partSizeBytes) || partSizeBytes <= 0)
    throw new RangeError(`part size must be a positive integer, got ${partSizeBytes}`);
  const parts: PartRange[] = [];
  for (let index = 0, start = 0; start < imageBytes; index++, start += partSizeBytes) {
    const length = Math.min(partSizeBytes, imageBytes - start);
    parts.push({ index, start, end: start + length - 1, length });
  }
  return parts;
}
