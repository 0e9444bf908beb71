/**
 * Property-based tests of the inventory reader (fast-check): 10,000 generated inventories in all, valid
 * and broken. A valid one yields every row with every field as written; a defect injected into one cell
 * is reported at that row's line and column; and any text at all — unbalanced quotes, stray columns,
 * control characters — is answered with problems that name a line, never with an exception.
 * The seed is printed; rerun a failure with VMCONVOY_FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { COLUMNS } from '../../client/inventory/columns';
import { parseInventory } from '../../client/inventory/read-inventory';

const SEED = Number(process.env.VMCONVOY_FUZZ_SEED ?? Date.now() % 2 ** 31);
const CSV_DIR = '/inventories/site-a';
console.log(`[fuzz] inventory seed ${SEED}`);

interface Row {
  name: string;
  image: string;
  architecture: 'i386' | 'x86_64';
  instance_type: string;
  wave: number;
  description: string;
  security_groups: string[];
  tags: Array<[string, string]>;
  boot_check: boolean;
}

// Names made only of dots are refused (they would break S3 keys), so valid names have something else.
const nameArb = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/).filter((n) => !/^\.+$/.test(n));
// Free text with the characters that need CSV quoting: commas, quotes, newlines.
const textArb = fc
  .string({ unit: fc.constantFrom('a', 'Z', '0', ' ', ',', '"', '\n', 'é', ';', '='), maxLength: 40 })
  .map((s) => s.trim());
const tokenArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/);

// Keys AWS reserves (aws:) and the one key a JavaScript object cannot hold are refused: see DEFECTS.
const tagKeyArb = fc
  .oneof(tokenArb, fc.constantFrom('toString', 'constructor', 'hasOwnProperty'))
  .filter((k) => !/^aws:/i.test(k) && k !== '__proto__');
// Built once: compiling a regex into an arbitrary is costly, and rowArb runs for every row of every run.
const imageArb = fc.stringMatching(/^[a-z0-9_-]{1,10}\.(vmdk|vhd|raw)$/);
const rowFieldsArb = fc.record({
  image: imageArb,
  // The rows are Linux: VM Import takes 64-bit Linux on its own list of types only (launch rules,
  // validate-guests.test.ts), so valid rows keep to those.
  architecture: fc.constant('x86_64' as const),
  instance_type: fc.constantFrom('t2.micro', 'm3.large', 'c3.xlarge'),
  wave: fc.integer({ min: 1, max: 5 }),
  description: textArb.map((s) => s.slice(0, 255)),
  security_groups: fc.array(tokenArb, { maxLength: 3 }),
  tags: fc.uniqueArray(fc.tuple(tagKeyArb, tokenArb), { maxLength: 3, selector: ([k]) => k }),
  boot_check: fc.boolean(),
});

const inventoryArb: fc.Arbitrary<Row[]> = fc
  .uniqueArray(nameArb, { minLength: 1, maxLength: 12 })
  .chain((names) =>
    fc
      .array(rowFieldsArb, { minLength: names.length, maxLength: names.length })
      .map((rows) => rows.map((r, i) => ({ ...r, name: names[i]! })))
  );

const HEADER = [
  'name',
  'image',
  'architecture',
  'instance_type',
  'wave',
  'description',
  'security_groups',
  'tags',
  'boot_check',
] as const;
type Header = (typeof HEADER)[number];

function quote(cell: string): string {
  return /[",\n\r]/.test(cell) || cell !== cell.trim() ? `"${cell.replace(/"/g, '""')}"` : cell;
}

function cellsOf(row: Row): Record<Header, string> {
  return {
    name: row.name,
    image: row.image,
    architecture: row.architecture,
    instance_type: row.instance_type,
    wave: String(row.wave),
    description: row.description,
    security_groups: row.security_groups.join(';'),
    tags: row.tags.map(([k, v]) => `${k}=${v}`).join(';'),
    boot_check: String(row.boot_check),
  };
}

/** The CSV text and the line each row starts on (quoted newlines push later rows down). */
function render(
  rows: Array<Record<Header, string>>,
  raw: Map<number, string> = new Map()
): { text: string; lines: number[] } {
  let text = `${HEADER.join(',')}\n`;
  let line = 2;
  const lines: number[] = [];
  rows.forEach((cells, i) => {
    const rendered = raw.get(i) ?? HEADER.map((h) => quote(cells[h])).join(',');
    lines.push(line);
    text += `${rendered}\n`;
    line += rendered.split('\n').length;
  });
  return { text, lines };
}

test('valid generated inventories: every row and every field comes back as written', async () => {
  await fc.assert(
    fc.asyncProperty(inventoryArb, async (rows) => {
      const { text, lines } = render(rows.map(cellsOf));
      const result = await parseInventory(text, CSV_DIR, { checkImages: false });
      assert.ok(result.ok, `valid inventory refused: ${JSON.stringify(!result.ok && result.errors)}`);
      assert.equal(result.rows.length, rows.length);
      for (const got of result.rows) {
        const i = rows.findIndex((r) => r.name === got.spec.name);
        const want = rows[i]!;
        assert.equal(got.line, lines[i], `line of ${want.name}`);
        assert.equal(got.spec.image, path.resolve(CSV_DIR, want.image));
        assert.equal(got.spec.architecture, want.architecture);
        assert.equal(got.spec.instanceType, want.instance_type);
        assert.equal(got.spec.wave, want.wave);
        assert.equal(got.spec.description ?? '', want.description);
        assert.deepEqual(got.spec.securityGroups, want.security_groups);
        assert.deepEqual(got.spec.tags, Object.fromEntries(want.tags));
        assert.equal(got.spec.bootCheck, want.boot_check);
      }
      // Waves in order, file order within a wave.
      const order = result.rows.map((r) => [r.spec.wave, r.line] as const);
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1])
      );
    }),
    { numRuns: 3000, seed: SEED }
  );
});

/** A defect to inject into one row: the column it concerns (undefined = the row as a whole) and how. */
type Defect = { column: Header | undefined; apply(cells: Record<Header, string>): Record<Header, string> | string };
const DEFECTS: Record<string, Defect> = {
  badArchitecture: { column: 'architecture', apply: (c) => ({ ...c, architecture: 'arm64' }) },
  zeroWave: { column: 'wave', apply: (c) => ({ ...c, wave: '0' }) },
  wordWave: { column: 'wave', apply: (c) => ({ ...c, wave: 'two' }) },
  badBool: { column: 'boot_check', apply: (c) => ({ ...c, boot_check: 'yes' }) },
  badName: { column: 'name', apply: (c) => ({ ...c, name: `${c.name.slice(0, 10)} /x` }) },
  longName: { column: 'name', apply: (c) => ({ ...c, name: 'n'.repeat(65) }) },
  noImage: { column: 'image', apply: (c) => ({ ...c, image: '' }) },
  noInstanceType: { column: 'instance_type', apply: (c) => ({ ...c, instance_type: '' }) },
  badTag: { column: 'tags', apply: (c) => ({ ...c, tags: 'novalue' }) },
  reservedTag: { column: 'tags', apply: (c) => ({ ...c, tags: 'aws:owner=me' }) },
  protoTag: { column: 'tags', apply: (c) => ({ ...c, tags: '__proto__=x' }) },
  longDescription: { column: 'description', apply: (c) => ({ ...c, description: 'd'.repeat(256) }) },
  extraCell: { column: undefined, apply: (c) => `${HEADER.map((h) => quote(c[h])).join(',')},surplus` },
  missingCell: {
    column: undefined,
    apply: (c) =>
      HEADER.slice(1)
        .map((h) => quote(c[h]))
        .join(','),
  },
};

test('a defect injected into one cell is reported at its line and column', async () => {
  await fc.assert(
    fc.asyncProperty(
      inventoryArb,
      fc.nat(),
      fc.constantFrom(...Object.keys(DEFECTS)),
      async (rows, pick, defectName) => {
        const defect = DEFECTS[defectName]!;
        const target = pick % rows.length;
        const cells = rows.map(cellsOf);
        const applied = defect.apply(cells[target]!);
        const raw = new Map<number, string>();
        if (typeof applied === 'string') raw.set(target, applied);
        else cells[target] = applied;
        const { text, lines } = render(cells, raw);
        const result = await parseInventory(text, CSV_DIR, { checkImages: false });
        assert.ok(!result.ok, `${defectName} on row ${target} was accepted`);
        const hit = result.errors.find(
          (e) => e.line === lines[target] && (defect.column === undefined || e.column === defect.column)
        );
        assert.ok(
          hit,
          `${defectName}: no problem at line ${lines[target]}${defect.column ? ` column ${defect.column}` : ''}; got ${JSON.stringify(result.errors)}`
        );
        assert.ok(hit.message.length > 10, 'the message says what to fix');
      }
    ),
    { numRuns: 4000, seed: SEED + 1 }
  );
});

test('a duplicate name is reported on the second line, naming the first', async () => {
  await fc.assert(
    fc.asyncProperty(
      inventoryArb.filter((r) => r.length >= 2),
      fc.nat(),
      async (rows, pick) => {
        const second = 1 + (pick % (rows.length - 1));
        const cells = rows.map(cellsOf);
        cells[second] = { ...cells[second]!, name: cells[0]!.name };
        const { text, lines } = render(cells);
        const result = await parseInventory(text, CSV_DIR, { checkImages: false });
        assert.ok(!result.ok);
        const dup = result.errors.find((e) => e.line === lines[second] && e.column === 'name');
        assert.ok(dup, JSON.stringify(result.errors));
        assert.match(dup.message, new RegExp(`line ${lines[0]}`));
      }
    ),
    { numRuns: 1000, seed: SEED + 2 }
  );
});

test('any text at all: problems with a line and a known column, never an exception', async () => {
  const garbage = fc.oneof(
    fc.string({
      unit: fc.constantFrom('a', ',', '"', '\n', '\r', ';', '=', ' ', '\u0000', '\ufeff', 'x'),
      maxLength: 200,
    }),
    // Near-valid: a real header, then noise.
    fc.string({ maxLength: 200 }).map((s) => `name,image,architecture,instance_type\n${s}`),
    fc
      .array(fc.array(fc.string({ maxLength: 8 }), { maxLength: 6 }), { maxLength: 8 })
      .map((rows) => rows.map((r) => r.join(',')).join('\n'))
  );
  const known = new Set<string>(COLUMNS);
  await fc.assert(
    fc.asyncProperty(garbage, async (text) => {
      const result = await parseInventory(text, CSV_DIR, { checkImages: false });
      if (result.ok) return;
      assert.ok(result.errors.length > 0);
      const lineCount = text.split(/\r\n|\r|\n/).length + 1;
      for (const e of result.errors) {
        assert.ok(
          Number.isInteger(e.line) && e.line >= 0 && e.line <= lineCount,
          `line ${e.line} outside the file (${lineCount} lines): ${e.message}`
        );
        assert.ok(e.message.trim().length > 0);
        // A problem names a column of the contract, or (for an unknown column) the header cell as written.
        if (e.column !== undefined)
          assert.ok(known.has(e.column) || /^unknown column/.test(e.message), `column ${e.column}: ${e.message}`);
      }
    }),
    { numRuns: 2000, seed: SEED + 3 }
  );
});
