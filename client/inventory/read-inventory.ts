/**
 * The inventory CSV → normalised rows. Every problem in the file is collected and reported at once, each
 * with its line (and column) and what to do: CSV syntax, missing/unknown/duplicate columns, rows with the
 * wrong number of cells, bad values, duplicate names, missing or unreadable images, user-data files, and
 * images that pre-flight rejects. A user's mistake never throws.
 */
import { parse } from 'csv-parse/sync';
import type { CsvError, Info } from 'csv-parse/sync';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { preflight } from '../../activities/disk-image/preflight';
import type { InventoryRow } from '../../common/contracts/fleet';
import { MAX_USER_DATA_BYTES } from '../../common/contracts/limits';
import type { VmSpec } from '../../common/contracts/migration';
import { checkDataDisks } from './data-disk-checks';
import { mapLimited } from '../map-limited';
import { intakeNote } from './intake-note';
import type { Column, RowCells, RowFiles } from './columns';
import { COLUMNS, REQUIRED_COLUMNS, rowToSpec } from './columns';
import type { GuestCheck, GuestCheckResult, RowInspection } from './guest-checks';
import { checkGuests, launchProblems } from './guest-checks';

export type { RowInspection } from './guest-checks';

export interface InventoryProblem {
  /** 1-based line in the CSV; 0 = the file as a whole. */
  line: number;
  column?: string;
  message: string;
}

/** `notes`: what pre-flight found worth saying of valid rows (a conversion and its scratch space, an OVA's VM). */
export type InventoryResult = (
  { ok: true; rows: InventoryRow[]; notes?: InventoryProblem[] } | { ok: false; errors: InventoryProblem[] }
) & {
  /** What does not stop the batch but needs a look (guest inspection warnings), each on its row's line. */
  warnings?: InventoryProblem[];
  /** The look inside each row's guest (each distinct image inspected once), when images were checked. */
  inspections?: RowInspection[];
};

export interface ReadInventoryOptions {
  /** Pre-flight every image (format, completeness, size) and read user-data files. @default true */
  checkImages?: boolean;
  /** Directories images may be read from (VMCONVOY_IMAGE_ROOTS); empty = anywhere. */
  imageRoots?: readonly string[];
  /**
   * Look inside each guest (activities/guest) and refuse what VM Import would. false leaves only the
   * container checked, like `checkImages: false` leaves out images: for tests of the reader on random-byte
   * images, which hold no guest. The commands never set it. @default true
   */
  inspectGuests?: boolean;
  /** Pre-flights at once. @default 16 */
  concurrency?: number;
}

interface ParsedRecord {
  record: string[];
  info: Info;
}

/** The CSV's records with the line each starts on, and the syntax errors (every one, not just the first). */
function parseCsv(text: string): { records: Array<{ line: number; cells: string[] }>; errors: InventoryProblem[] } {
  const errors: InventoryProblem[] = [];
  let parsed: ParsedRecord[] = [];
  try {
    parsed = parse(text, {
      info: true,
      bom: true,
      skip_empty_lines: true,
      // Rows with too few or too many cells are reported below, each with its line: never silently accepted.
      relax_column_count: true,
      skip_records_with_error: true,
      on_skip: (err: CsvError | undefined) => {
        if (err) errors.push({ line: Number(err.lines ?? 0), message: `CSV syntax: ${err.message}` });
        return undefined;
      },
    }) as unknown as ParsedRecord[];
  } catch (err) {
    const e = err as Partial<CsvError> & Error;
    errors.push({ line: Number(e.lines ?? 0), message: `CSV syntax: ${e.message}` });
  }
  const records = parsed.map(({ record, info }) => {
    // info.lines is the record's last line; a quoted cell may span lines.
    const spanned = record.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0);
    return { line: info.lines - spanned, cells: record };
  });
  return { records, errors };
}

/** The header row → column index per known column, and the problems with it. */
function readHeader(cells: string[], line: number): { index: Map<Column, number>; errors: InventoryProblem[] } {
  const errors: InventoryProblem[] = [];
  const index = new Map<Column, number>();
  cells.forEach((raw, i) => {
    const name = raw.trim().toLowerCase();
    if (name === '') errors.push({ line, message: `column ${i + 1} has no name: remove the empty column or name it` });
    else if (!(COLUMNS as readonly string[]).includes(name)) {
      errors.push({
        line,
        column: raw.trim(),
        message: `unknown column "${raw.trim()}" (columns: ${COLUMNS.join(', ')})`,
      });
    } else if (index.has(name as Column))
      errors.push({ line, column: name, message: `column "${name}" appears twice` });
    else index.set(name as Column, i);
  });
  for (const c of REQUIRED_COLUMNS)
    if (!index.has(c)) errors.push({ line, column: c, message: `missing column "${c}" (it is required)` });
  return { index, errors };
}

export interface FileCheck {
  line: number;
  files: RowFiles;
  /** The row's spec when the row is valid: a detected format is filled in. */
  spec?: VmSpec;
}

/**
 * Pre-flight each distinct (image, declared format, volume size) once, with bounded concurrency, and read
 * each user-data file once. Rows with other problems are checked too, so every problem shows at once.
 */
async function checkFiles(
  checks: FileCheck[],
  opts: ReadInventoryOptions,
  notes?: InventoryProblem[]
): Promise<GuestCheckResult> {
  const errors: InventoryProblem[] = [];
  const concurrency = opts.concurrency ?? 16;
  const keyOf = (f: RowFiles): string => JSON.stringify([f.image, f.format ?? '', f.volumeSizeGib ?? 0]);
  const unique = new Map<string, RowFiles>();
  for (const c of checks) if (c.files.image && !unique.has(keyOf(c.files))) unique.set(keyOf(c.files), c.files);
  type Found = {
    format: VmSpec['format'];
    note?: string;
    imageBytes: number;
    virtualBytes: number;
    ovfDisks?: number;
    scratchBytes?: number;
  };
  const outcomes = new Map<string, Found | { error: string }>();
  await mapLimited([...unique], concurrency, async ([key, files]) => {
    const probe = { image: files.image!, format: files.format, volumeSizeGib: files.volumeSizeGib };
    try {
      const found = await preflight(probe, { imageRoots: opts.imageRoots, qemuImg: false });
      // The container found (QCOW2, OVA...), not the VMDK it becomes: pre-flight in the workflow checks it again.
      outcomes.set(key, {
        format: found.sourceFormat ?? found.format,
        note: intakeNote(found),
        imageBytes: found.imageBytes,
        virtualBytes: found.virtualBytes,
        ovfDisks: found.ovf?.disks,
        scratchBytes: found.conversion?.scratchBytes,
      });
    } catch (err) {
      outcomes.set(key, { error: (err as Error).message });
    }
  });

  const userData = [...new Set(checks.map((c) => c.files.userDataFile).filter((f): f is string => f !== undefined))];
  const userDataProblem = new Map<string, string>();
  await mapLimited(userData, concurrency, async (file) => {
    try {
      const s = await stat(file);
      if (!s.isFile()) userDataProblem.set(file, `${file} is not a file`);
      else if (s.size > MAX_USER_DATA_BYTES)
        userDataProblem.set(file, `${file} is ${s.size} bytes; EC2 allows 16 KiB of user data`);
    } catch (err) {
      userDataProblem.set(file, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });

  const dataDisks = await checkDataDisks(
    checks,
    (c) => {
      const o = c.files.image ? outcomes.get(keyOf(c.files)) : undefined;
      return o && !('error' in o) ? o : undefined;
    },
    opts
  );
  errors.push(...dataDisks.errors);
  notes?.push(...dataDisks.notes);

  const guests: GuestCheck[] = [];
  for (const c of checks) {
    const outcome = c.files.image ? outcomes.get(keyOf(c.files)) : undefined;
    if (outcome && 'error' in outcome) errors.push({ line: c.line, column: 'image', message: outcome.error });
    else if (outcome?.format) {
      guests.push({ line: c.line, vm: c.spec?.name ?? '', files: c.files, format: outcome.format });
      if (c.spec) c.spec.format ??= outcome.format;
      if (outcome.note) notes?.push({ line: c.line, column: 'image', message: outcome.note });
    }
    const userDataError = c.files.userDataFile && userDataProblem.get(c.files.userDataFile);
    if (userDataError) errors.push({ line: c.line, column: 'user_data_file', message: userDataError });
  }
  const inspected =
    opts.inspectGuests === false
      ? { errors: [], warnings: [], inspections: [] }
      : await checkGuests(guests, { imageRoots: opts.imageRoots, concurrency });
  return { ...inspected, errors: [...errors, ...inspected.errors] };
}

export async function parseInventory(
  text: string,
  csvDir: string,
  opts: ReadInventoryOptions = {}
): Promise<InventoryResult> {
  const { records, errors } = parseCsv(text);
  const [header, ...body] = records;
  if (!header) {
    if (errors.length === 0)
      errors.push({
        line: 1,
        message:
          'the inventory is empty: the first line must name the columns (name,image,architecture,instance_type,...)',
      });
    return { ok: false, errors };
  }
  const { index, errors: headerErrors } = readHeader(header.cells, header.line);
  errors.push(...headerErrors);
  if (headerErrors.length > 0) return { ok: false, errors: sortProblems(errors) };

  const rows: InventoryRow[] = [];
  const checks: FileCheck[] = [];
  const firstLine = new Map<string, number>();
  for (const { line, cells } of body) {
    if (cells.every((c) => c.trim() === '')) continue; // a spreadsheet's trailing ",,,," line
    if (cells.length !== header.cells.length) {
      errors.push({
        line,
        message: `${cells.length} cells, but the header has ${header.cells.length} columns (quote cells that contain commas)`,
      });
      continue;
    }
    const values: RowCells = {};
    for (const [column, i] of index) values[column] = cells[i]!.trim();
    const result = rowToSpec(values, csvDir);
    for (const p of result.problems) errors.push({ line, ...p });
    const name = values.name ?? '';
    if (name) {
      const seen = firstLine.get(name);
      if (seen !== undefined)
        errors.push({ line, column: 'name', message: `duplicate name "${name}" (also on line ${seen})` });
      else firstLine.set(name, line);
    }
    if (result.spec) {
      rows.push({ row: rows.length, line, spec: result.spec });
      errors.push(...launchProblems(line, result.spec));
    }
    checks.push({ line, files: result.files, spec: result.spec });
  }
  if (body.length === 0 && errors.length === 0)
    errors.push({ line: header.line, message: 'the inventory has no VM rows' });
  const notes: InventoryProblem[] = [];
  const files = opts.checkImages !== false ? await checkFiles(checks, opts, notes) : undefined;
  errors.push(...(files?.errors ?? []));
  const extra = files ? { warnings: sortProblems(files.warnings), inspections: files.inspections } : {};
  if (errors.length > 0) return { ok: false, errors: sortProblems(errors), ...extra };

  // Waves run in order; within a wave, file order.
  const sorted = [...rows]
    .sort((a, b) => a.spec.wave - b.spec.wave || a.line - b.line)
    .map((r, i) => ({ ...r, row: i }));
  return notes.length > 0
    ? { ok: true, rows: sorted, notes: sortProblems(notes), ...extra }
    : { ok: true, rows: sorted, ...extra };
}

export async function readInventory(file: string, opts: ReadInventoryOptions = {}): Promise<InventoryResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (code ?? (err as Error).message);
    return { ok: false, errors: [{ line: 0, message: `cannot read ${file}: ${why}` }] };
  }
  return parseInventory(text, path.dirname(path.resolve(file)), opts);
}

function sortProblems(problems: InventoryProblem[]): InventoryProblem[] {
  const order = (c?: string): number => (c === undefined ? -1 : (COLUMNS as readonly string[]).indexOf(c));
  return problems.sort((a, b) => a.line - b.line || order(a.column) - order(b.column));
}
