/**
 * The inventory's data disks (issue 19): each row's other disks (the image cell's other paths, or an OVA's
 * other disks) pre-flighted like the boot disk but without a look inside (never booted).
 */
import { preflightDataDisk } from '../../activities/data-disks';
import type { DataDiskPreflight, DataDiskRef } from '../../common/contracts/data-disks';
import { dataDiskRefs, dataDiskSource } from '../../common/contracts/data-disks';
import { MAX_DATA_DISKS, dataDiskDevice } from '../../common/contracts/migration';
import { mapLimited } from '../map-limited';
import { intakeNote, mib } from './intake-note';
import type { FileCheck, InventoryProblem, ReadInventoryOptions } from './read-inventory';

/**
 * Each row's data disks (the image cell's other paths, or an OVA's other disks), pre-flighted like the boot
 * disk but without a look inside (never booted): a problem names its disk, and a row with data disks gets a
 * note with its totals (disks, bytes to upload, virtual size) and where each disk is attached; each disk
 * converted on the site worker gets a note naming it, and the row one with the scratch space in total.
 */
export async function checkDataDisks(
  checks: FileCheck[],
  boot: (
    c: FileCheck
  ) => { imageBytes: number; virtualBytes: number; ovfDisks?: number; scratchBytes?: number } | undefined,
  opts: ReadInventoryOptions
): Promise<{ errors: InventoryProblem[]; notes: InventoryProblem[] }> {
  const errors: InventoryProblem[] = [];
  const notes: InventoryProblem[] = [];
  const found = new Map<string, DataDiskPreflight | { error: string }>();
  const refsOf = (c: FileCheck): DataDiskRef[] =>
    c.files.image ? dataDiskRefs({ image: c.files.image, dataDisks: c.files.dataDisks }, boot(c)?.ovfDisks) : [];
  const work = checks.flatMap((c) => refsOf(c).map((ref, i) => ({ ref, disk: i + 1 })));
  const keyOf = (ref: DataDiskRef, disk: number): string => JSON.stringify([ref.image, ref.ovaDisk ?? -1, disk]);
  await mapLimited(work, opts.concurrency ?? 16, async ({ ref, disk }) => {
    if (found.has(keyOf(ref, disk))) return;
    try {
      found.set(
        keyOf(ref, disk),
        await preflightDataDisk({ ref, disk }, { imageRoots: opts.imageRoots, qemuImg: false })
      );
    } catch (err) {
      found.set(keyOf(ref, disk), { error: (err as Error).message });
    }
  });
  for (const c of checks) {
    const refs = refsOf(c);
    const first = boot(c);
    if (refs.length === 0 || !first) continue;
    // Data disks are imported with the worker's own credentials into its Region (activities/index.ts
    // importVolume): a row that names another account or Region would split its disks across two.
    if (c.spec && (c.spec.region !== undefined || c.spec.awsProfile !== undefined)) {
      errors.push({
        line: c.line,
        column: c.spec.region !== undefined ? 'region' : 'aws_profile',
        message: `a VM with data disks goes to the worker's own account and Region for now: leave region and aws_profile empty on this row (and run it from a worker of that account), or import its data disks separately`,
      });
      continue;
    }
    if (refs.length > MAX_DATA_DISKS) {
      errors.push({
        line: c.line,
        column: 'image',
        message: `${refs.length} data disks; vmconvoy attaches at most ${MAX_DATA_DISKS} (/dev/sdf to /dev/sdp)`,
      });
      continue;
    }
    let bytes = first.imageBytes;
    let virtual = first.virtualBytes;
    const placed: string[] = [];
    const scratch = first.scratchBytes ? [{ what: 'boot disk', bytes: first.scratchBytes }] : [];
    refs.forEach((ref, i) => {
      const result = found.get(keyOf(ref, i + 1));
      if (!result) return;
      if ('error' in result) {
        errors.push({ line: c.line, column: 'image', message: result.error });
        return;
      }
      bytes += result.imageBytes;
      virtual += result.virtualBytes;
      placed.push(`${dataDiskSource(ref)} (${result.volumeSizeGib} GiB) at ${dataDiskDevice(i + 1)}`);
      if (result.conversion) {
        const what = `data disk ${i + 1} (${dataDiskSource(ref)})`;
        notes.push({ line: c.line, column: 'image', message: `${what}: ${intakeNote(result)}` });
        scratch.push({ what: `data disk ${i + 1}`, bytes: result.conversion.scratchBytes });
      }
    });
    if (placed.length === refs.length) {
      notes.push({
        line: c.line,
        column: 'image',
        message: `${refs.length + 1} disks, ${bytes} bytes to upload, ${virtual} bytes virtual; data disks: ${placed.join(', ')}`,
      });
      // A data disk converted: the sum the VM's workflow checks the site's scratch folder against before the first.
      if (scratch.length > (first.scratchBytes ? 1 : 0)) {
        const total = scratch.reduce((sum, s) => sum + s.bytes, 0);
        const each = scratch.map((s) => `${s.what} ${mib(s.bytes)}`).join(', ');
        notes.push({
          line: c.line,
          column: 'image',
          message: `${scratch.length} of its ${refs.length + 1} disks are converted on the site worker: up to ${mib(total)} of scratch space there in total (${each}), checked before the first conversion`,
        });
      }
    }
  }
  return { errors, notes };
}

/** Parses and checks an inventory already in memory; `csvDir` resolves relative paths. */
