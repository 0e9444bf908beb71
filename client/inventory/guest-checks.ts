/**
 * `validate`'s share of what pre-flight enforces again in the workflow (activities/guest/row-checks.ts):
 * ImportInstance's launch rules for each row, and the look inside each distinct guest (inspected once,
 * however many rows name it). A refusal is a problem on the row's line; a warning is shown and the row
 * stays valid; a row with `inspection=skip` is recorded as skipped by the operator.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { InspectionSummary, VmSpec } from '../../common/contracts/migration';
import type { RuleRefusal } from '../../common/vm-import-rules';
import {
  SKIPPED_INSPECTION,
  guestRefusalText,
  inspectRow,
  launchRefusalText,
  launchRefusals,
} from '../../activities/guest/row-checks';
import { mapLimited } from '../map-limited';
import type { Column, RowFiles } from './columns';

export interface RowInspection {
  line: number;
  /** The row's name (empty when the name cell itself is wrong). */
  vm: string;
  inspection: InspectionSummary;
}

interface Problem {
  line: number;
  column?: string;
  message: string;
}

/** The column that holds what a launch rule objects to. */
const RULE_COLUMN: Record<string, Column> = {
  'linux-64-bit': 'architecture',
  'linux-instance-type': 'instance_type',
  'windows-instance-type': 'instance_type',
  'private-ipv4': 'private_ip',
  'user-data-size': 'user_data_file',
  'ec2-tags': 'tags',
  'boot-volume-2tib': 'volume_size_gib',
  'volume-size': 'volume_size_gib',
};

/** Every launch rule a valid row breaks, each on its column, naming the rule and what to change. */
export function launchProblems(line: number, spec: VmSpec): Problem[] {
  return launchRefusals(spec).map((r: RuleRefusal) => ({
    line,
    column: RULE_COLUMN[r.rule],
    message: launchRefusalText(r),
  }));
}

export interface GuestCheck {
  line: number;
  vm: string;
  files: RowFiles;
  /** The container pre-flight found (only rows whose image passed pre-flight are inspected). */
  format: NonNullable<VmSpec['format']>;
}

export interface GuestCheckResult {
  errors: Problem[];
  warnings: Problem[];
  inspections: RowInspection[];
}

/**
 * Which file a row names: its device and inode, so that two paths to one file (a symlink, a hard link,
 * `./disk.vmdk` beside `/abs/disk.vmdk`) are one image; the resolved path when the file cannot be stat'd
 * (the inspection then reports why).
 */
async function fileKey(image: string): Promise<string> {
  try {
    const s = await stat(image, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch {
    return path.resolve(image);
  }
}

/** Inspects each distinct (file, container, platform) once, with bounded concurrency. */
export async function checkGuests(
  checks: GuestCheck[],
  opts: { imageRoots?: readonly string[]; concurrency: number }
): Promise<GuestCheckResult> {
  const inspected = checks.filter((c) => c.files.inspection !== 'skip');
  const files = new Map<string, string>();
  await mapLimited([...new Set(inspected.map((c) => c.files.image!))], opts.concurrency, async (image) =>
    files.set(image, await fileKey(image))
  );
  const keyOf = (c: GuestCheck): string =>
    JSON.stringify([files.get(c.files.image!), c.format, c.files.platform ?? '']);
  const unique = new Map<string, GuestCheck>();
  for (const c of inspected) if (!unique.has(keyOf(c))) unique.set(keyOf(c), c);
  const found = new Map<string, InspectionSummary>();
  await mapLimited([...unique], opts.concurrency, async ([key, c]) => {
    const spec = { image: c.files.image!, format: c.format, platform: c.files.platform };
    found.set(key, await inspectRow(spec, { imageRoots: opts.imageRoots }));
  });
  const out: GuestCheckResult = { errors: [], warnings: [], inspections: [] };
  for (const c of checks) {
    const inspection = c.files.inspection === 'skip' ? SKIPPED_INSPECTION : found.get(keyOf(c))!;
    out.inspections.push({ line: c.line, vm: c.vm, inspection });
    if (inspection.verdict === 'refuse')
      out.errors.push({ line: c.line, column: 'image', message: guestRefusalText(inspection) });
    else if (inspection.verdict === 'warn')
      for (const r of inspection.reasons)
        out.warnings.push({ line: c.line, column: 'image', message: `${r.message} ${r.fix} [rule ${r.rule}]` });
  }
  return out;
}
