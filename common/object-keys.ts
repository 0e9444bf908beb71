/**
 * Where one VM's objects live in the staging bucket. Deterministic (no random prefix), so a new run of the
 * same VM finds and reuses the parts an earlier run uploaded, and cleanup knows exactly what to delete.
 *
 *   <keyPrefix>ns=<namespace>/<batch>/<vm>/image.part<N>
 *   <keyPrefix>ns=<namespace>/<batch>/<vm>/manifest.xml
 *   <keyPrefix>ns=<namespace>/<batch>/<vm>/import-requested   (ImportInstance may have been sent; by whom)
 *   <keyPrefix>ns=<namespace>/<batch>/<vm>/resources.json     (what EC2 created for the VM: kept on failure)
 *
 * The Temporal namespace keeps two deployments that share a bucket (and a batch name) apart: neither finds
 * the other's manifest, marker or record, so neither adopts nor deletes what the other made. VMs started
 * before the namespace was part of the key carry no namespace in their location and keep the old layout
 * `<keyPrefix><batch>/<vm>/` to the end (their parts, manifest and marker are there). The `ns=` segment
 * cannot be a batch name (`=` is not allowed in one), so the two layouts never overlap.
 */
import type { ObjectLocation } from './contracts/activity-io';

/** The key segment of a namespace: what S3 keys and URLs carry unchanged. */
function namespaceSegment(namespace: string): string {
  return `ns=${encodeURIComponent(namespace)}/`;
}

/** The VM's folder, with its trailing slash: `b/vm1/` never matches `b/vm10/...`. */
export function vmPrefix(keyPrefix: string, loc: ObjectLocation): string {
  const scope = loc.namespace ? namespaceSegment(loc.namespace) : '';
  return `${keyPrefix}${scope}${loc.batch}/${loc.vm}/`;
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

/**
 * What EC2 created for the VM (contracts/migration.ts VmResourceRecord). Cleanup deletes it only once no
 * instance it names remains, so a later run of the VM can adopt or terminate what an earlier one left.
 */
export function resourceRecordKey(keyPrefix: string, loc: ObjectLocation): string {
  return `${vmPrefix(keyPrefix, loc)}resources.json`;
}

/** True for the key of an uploaded image part of this VM. */
export function isPartKey(keyPrefix: string, loc: ObjectLocation, key: string): boolean {
  const prefix = vmPrefix(keyPrefix, loc);
  return key.startsWith(prefix) && /^image\.part\d+$/.test(key.slice(prefix.length));
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

/**
 * The batch's report, written when the batch ends (`json` and `html`, activities/batch-report.ts), so the
 * record outlives Temporal's retention. A file in the batch's folder, not a folder: every VM folder is
 * `<batch>/<vm>/` with its slash, so none is a prefix of it and no VM cleanup deletes it.
 */
export function batchReportKey(keyPrefix: string, loc: Omit<ObjectLocation, 'vm'>, ext: 'json' | 'html'): string {
  const scope = loc.namespace ? namespaceSegment(loc.namespace) : '';
  return `${keyPrefix}${scope}${loc.batch}/batch-report.${ext}`;
}
