/**
 * The inventory CSV → normalised rows. Every problem in the file is collected and reported at once, each
 * with its line and column and what to do; nothing throws for a user's mistake.
 */
import { mapLimited } from '../map-limited';
import { parse } from 'csv-parse/sync';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { preflight } from '../../activities/disk-image';
import type { InventoryRow } from '../../workflows/fleet-types';
import type { VmSpec } from '../../workflows/types';
import { DISK_FORMATS, VM_NAME_PATTERN, vmSpecSchema } from '../../workflows/types';

export const COLUMNS = [
  'name',
  'image',
  'format',
  'architecture',
  'instance_type',
  'platform',
  'availability_zone',
  'subnet_id',
  'private_ip',
  'security_groups',
  'volume_size_gib',
  'description',
  'user_data_file',
  'monitoring',
  'shutdown_behavior',
  'wave',
  'tags',
  'boot_check',
] as const;
const REQUIRED = ['name', 'image', 'architecture', 'instance_type'] as const;

export interface InventoryProblem {
  line: number;
  column?: string;
  message: string;
}

export type InventoryResult = { ok: true; rows: InventoryRow[] } | { ok: false; errors: InventoryProblem[] };

export interface ReadInventoryOptions {
  /** Run pre-flight on every image (format, size). @default true */
  checkImages?: boolean;
  imageRoots?: string[];
  /** Pre-flights at once. @default 8 */
  concurrency?: number;
}

type Raw = Record<string, string>;

function bool(value: string, column: string, problems: string[]): boolean | undefined {
  if (value === '') return undefined;
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  problems.push(`${column}: "${value}" is not true or false`);
  return undefined;
}

/** One row → a spec, or the problems found in it (column: message). */
function rowToSpec(raw: Raw, csvDir: string): { spec?: VmSpec; problems: Array<[string | undefined, string]> } {
  const problems: Array<[string | undefined, string]> = [];
  const local: string[] = [];
  const v = (c: string): string => (raw[c] ?? '').trim();
  for (const column of REQUIRED) if (v(column) === '') problems.push([column, `${column} is required`]);
  if (v('name') && !VM_NAME_PATTERN.test(v('name'))) problems.push(['name', `"${v('name')}": use 1-64 characters of A-Z a-z 0-9 . _ -`]);
  const format = v('format').toUpperCase();
  if (format && !(DISK_FORMATS as readonly string[]).includes(format)) problems.push(['format', `"${v('format')}" is not VMDK, RAW or VHD (or leave it empty to detect)`]);
  if (v('platform') && !/^(windows|linux)$/i.test(v('platform'))) problems.push(['platform', `"${v('platform')}": use Windows, or leave empty for Linux`]);
  const num = (c: string, min: number): number | undefined => {
    if (!v(c)) return undefined;
    const n = Number(v(c));
    if (!Number.isInteger(n) || n < min) {
      problems.push([c, `"${v(c)}" must be a whole number of at least ${min}`]);
      return undefined;
    }
    return n;
  };
  const tags: Record<string, string> = {};
  for (const pair of v('tags').split(';').map((t) => t.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) problems.push(['tags', `"${pair}" is not key=value (separate tags with ;)`]);
    else tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  const monitoring = bool(v('monitoring'), 'monitoring', local);
  const bootCheck = bool(v('boot_check'), 'boot_check', local);
  for (const p of local) problems.push([p.split(':')[0], p]);
  const candidate = {
    name: v('name'),
    image: v('image') ? path.resolve(csvDir, v('image')) : '',
    format: format || undefined,
    architecture: v('architecture'),
    instanceType: v('instance_type'),
    platform: /^windows$/i.test(v('platform')) ? 'Windows' : undefined,
    availabilityZone: v('availability_zone') || undefined,
    subnetId: v('subnet_id') || undefined,
    privateIp: v('private_ip') || undefined,
    securityGroups: v('security_groups').split(';').map((g) => g.trim()).filter(Boolean),
    volumeSizeGib: num('volume_size_gib', 1),
    description: v('description') || undefined,
    userDataFile: v('user_data_file') ? path.resolve(csvDir, v('user_data_file')) : undefined,
    monitoring,
    shutdownBehavior: v('shutdown_behavior') || undefined,
    wave: num('wave', 1),
    tags,
    bootCheck,
  };
  if (problems.length > 0) return { problems };
  const parsed = vmSpecSchema.safeParse(candidate);
  if (!parsed.success) {
    const toColumn: Record<string, string> = { instanceType: 'instance_type', shutdownBehavior: 'shutdown_behavior', description: 'description', architecture: 'architecture' };
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? '');
      const column = toColumn[field] ?? field;
      problems.push([column, `${column}: ${issue.message}${field === 'architecture' ? ' (use i386 or x86_64)' : field === 'shutdownBehavior' ? ' (use stop or terminate)' : ''}`]);
    }
    return { problems };
  }
  return { spec: parsed.data, problems };
}


export async function readInventory(file: string, opts: ReadInventoryOptions = {}): Promise<InventoryResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ line: 0, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  const errors: InventoryProblem[] = [];
  let records: Array<{ record: Raw; info: { lines: number } }>;
  try {
    records = parse<{ record: Raw; info: { lines: number } }>(text, {
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      info: true,
      skip_empty_lines: true,
      trim: false,
      bom: true,
    });
  } catch (err) {
    const e = err as { lines?: number; message: string };
    return { ok: false, errors: [{ line: e.lines ?? 0, message: `CSV syntax: ${e.message}` }] };
  }
  const headerLine = text.split(/\r?\n/)[0] ?? '';
  const header = headerLine.split(',').map((h) => h.trim().toLowerCase().replace(/^"|"$/g, ''));
  for (const h of header) {
    if (h && !(COLUMNS as readonly string[]).includes(h)) errors.push({ line: 1, column: h, message: `unknown column "${h}" (known: ${COLUMNS.join(', ')})` });
  }
  for (const required of REQUIRED) if (!header.includes(required)) errors.push({ line: 1, column: required, message: `missing column "${required}"` });
  if (records.length === 0) errors.push({ line: 1, message: 'the inventory has no VM rows' });
  if (errors.length > 0) return { ok: false, errors };

  const rows: InventoryRow[] = [];
  const firstLine = new Map<string, number>();
  for (const { record, info } of records) {
    const line = info.lines;
    const { spec, problems } = rowToSpec(record, path.dirname(path.resolve(file)));
    for (const [column, message] of problems) errors.push({ line, column, message });
    if (!spec) continue;
    const seen = firstLine.get(spec.name);
    if (seen !== undefined) errors.push({ line, column: 'name', message: `duplicate name "${spec.name}" (also on line ${seen})` });
    else firstLine.set(spec.name, line);
    rows.push({ row: rows.length, line, spec });
  }
  if (opts.checkImages !== false) {
    const checked = await mapLimited(rows, opts.concurrency ?? 8, async (r) => {
      try {
        const result = await preflight(r.spec, { imageRoots: opts.imageRoots, qemuImg: false });
        return { r, format: result.format };
      } catch (err) {
        return { r, error: (err as Error).message };
      }
    });
    for (const c of checked) {
      if (c.error !== undefined) errors.push({ line: c.r.line, column: 'image', message: c.error });
      else if (!c.r.spec.format) c.r.spec.format = c.format;
    }
    for (const r of rows) {
      if (!r.spec.userDataFile) continue;
      try {
        const data = await readFile(r.spec.userDataFile);
        if (data.length > 16 * 1024) errors.push({ line: r.line, column: 'user_data_file', message: `${r.spec.userDataFile} is ${data.length} bytes; EC2 allows 16 KiB of user data` });
      } catch (err) {
        errors.push({ line: r.line, column: 'user_data_file', message: `cannot read ${r.spec.userDataFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors: errors.sort((a, b) => a.line - b.line) };
  // Waves run in order; within a wave, file order.
  const sorted = [...rows].sort((a, b) => a.spec.wave - b.spec.wave || a.row - b.row).map((r, i) => ({ ...r, row: i }));
  return { ok: true, rows: sorted };
}
