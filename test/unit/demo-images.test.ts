/**
 * The demo's planned outcome comes from its disks' content: each example disk (dev/demo-images.ts) is read
 * by vmconvoy's validate (the look inside the guest) and by the simulator's own content judge as EC2 would
 * read it. legacy-01 (CentOS 4.9, kernel 2.6.9) is refused at validate (and EC2 would refuse it too);
 * batch-01 (a mainline kernel as GRUB's default) is only a warning at validate and fails at EC2 with its
 * kernel message; every other disk converts as the OS its inventory row says. Also: the images
 * are the ones examples/inventory.csv names, a second demo reuses them, and without Windows guests (no FUSE)
 * the Linux-only inventory is valid for the product and for VM Import's Linux instance types.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { validateCommand } from '../../client/commands/validate';
import { parseInventory, readInventory } from '../../client/inventory/read-inventory';
import type { VmSpec } from '../../common/contracts/migration';
import {
  DEMO_IMAGES,
  DEMO_OVAS,
  EXPECTED_FAILURE,
  EXPECTED_REFUSAL,
  linuxOnlyInventory,
  makeDemoImages,
} from '../../dev/demo-images';
import { REPO_ROOT } from '../../dev/services';
import instanceTypes from '../../sim/data/instance-types.json';
import { judgeDisk } from '../../sim/judge/judge';
import { rawDisk } from '../../sim/judge/raw-disk';

const INVENTORY = path.join(REPO_ROOT, 'examples', 'inventory.csv');
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'demo-images-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function specs(file: string): Promise<VmSpec[]> {
  const read = await readInventory(file, { checkImages: false });
  assert.ok(read.ok, JSON.stringify(!read.ok && read.errors));
  return read.rows.map((r) => r.spec);
}

/** What the simulator's judge makes of the disk at `image`: its failure message, or the platform it found. */
async function judged(image: string): Promise<string> {
  const format = image.endsWith('.raw') ? 'RAW' : image.endsWith('.vmdk') ? 'VMDK' : 'VHD';
  const name = path.basename(image);
  const raw = await rawDisk(format, image, path.join(dir, `${name}.judged.raw`));
  assert.ok('file' in raw, JSON.stringify(raw));
  const j = await judgeDisk(raw.file, await mkdtemp(path.join(dir, `${name}-`)));
  if (raw.file !== image) await rm(raw.file, { force: true });
  return j.failure?.message ?? j.platform ?? `unjudged: ${j.judged}`;
}

/**
 * Each VM of `inventory` → what its boot disk (the file of that name in `imageDir`; an OVA's first disk,
 * built beside it) is judged to be. Data disks are not judged: ImportVolume takes any disk.
 */
async function judgeAll(inventory: string, imageDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const spec of await specs(inventory)) {
    const file = path.basename(spec.image);
    const boot = DEMO_OVAS.find(([ova]) => ova === file)?.[1][0] ?? file;
    out[spec.name] = await judged(path.join(imageDir, boot));
  }
  return out;
}

/** What the demo expects of each VM at EC2: a kernel message for the two failing ones, the row's platform otherwise. */
async function planned(inventory: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const spec of await specs(inventory))
    out[spec.name] = [EXPECTED_FAILURE.vm, EXPECTED_REFUSAL.vm].includes(spec.name)
      ? ''
      : spec.platform === 'Windows'
        ? 'windows'
        : 'linux';
  return out;
}

/** The judge's verdicts on the two planned failures, and the rest as planned. */
function assertJudgedAsPlanned(result: Record<string, string>, plan: Record<string, string>): void {
  assert.ok(result[EXPECTED_FAILURE.vm]!.startsWith(EXPECTED_FAILURE.message), result[EXPECTED_FAILURE.vm]);
  assert.match(result[EXPECTED_REFUSAL.vm]!, /^ClientError: Unsupported kernel version 2\.6\.9-/);
  assert.deepEqual({ ...result, [EXPECTED_FAILURE.vm]: '', [EXPECTED_REFUSAL.vm]: '' }, plan);
}

/** validate on the demo's inventory: exactly legacy-01 refused (its kernel), batch-01 warned, nothing else. */
async function assertValidatedAsPlanned(inventory: string): Promise<void> {
  const result = await validateCommand(inventory);
  assert.ok(!result.ok);
  const refused = new Set(result.errors.map((e) => e.line));
  const names = (result.inspections ?? []).filter((i) => refused.has(i.line)).map((i) => i.vm);
  assert.deepEqual(names, [EXPECTED_REFUSAL.vm], JSON.stringify(result.errors));
  assert.ok(result.errors.every((e) => e.message.includes(EXPECTED_REFUSAL.message) && /linux-kernel/.test(e.message)));
  const verdicts = Object.fromEntries((result.inspections ?? []).map((i) => [i.vm, i.inspection.verdict]));
  assert.equal(verdicts[EXPECTED_FAILURE.vm], 'warn');
  for (const [vm, verdict] of Object.entries(verdicts))
    if (![EXPECTED_FAILURE.vm, EXPECTED_REFUSAL.vm].includes(vm)) assert.match(verdict, /^(ok|skipped)$/, vm);
}

test('the demo builds exactly the disks examples/inventory.csv names, a data disk and an OVA among them', async () => {
  const all = await specs(INVENTORY);
  const named = all
    .flatMap((s) => [s.image, ...(s.dataDisks ?? [])])
    .map((f) => path.relative(path.join(REPO_ROOT, 'examples', 'images'), f));
  const inOvas = new Set(DEMO_OVAS.flatMap(([, disks]) => disks));
  const built = [...DEMO_IMAGES.map(([file]) => file).filter((f) => !inOvas.has(f)), ...DEMO_OVAS.map(([f]) => f)];
  assert.deepEqual(named.sort(), built.sort());
  assert.ok(
    all.some((s) => (s.dataDisks ?? []).length > 0),
    'a VM with a data disk'
  );
  assert.ok(
    all.some((s) => s.image.endsWith('.ova')),
    'a VM exported as an OVA'
  );
});

test("judged by content: validate refuses legacy-01, batch-01 fails with EC2's kernel message, every other disk is the OS its row says; a second demo reuses the disks", async () => {
  const images = path.join(dir, 'with-windows');
  const made = await makeDemoImages(INVENTORY, images);
  assert.equal(made.built, true);
  assert.equal(made.inventory, path.join(images, made.windows ? 'inventory-demo.csv' : 'inventory-linux-only.csv'));
  const result = await judgeAll(made.inventory, images);
  assertJudgedAsPlanned(result, await planned(made.inventory));
  if (made.windows) assert.equal(Object.values(result).filter((p) => p === 'windows').length, 2);
  await assertValidatedAsPlanned(made.inventory);

  const again = await makeDemoImages(INVENTORY, images);
  assert.deepEqual([again.built, again.windows], [false, made.windows], 'the second demo reuses the disks');
});

test('without Windows guests: the Linux-only inventory migrates the same disks as Linux, on Linux instance types', async () => {
  const images = path.join(dir, 'linux-only');
  const made = await makeDemoImages(INVENTORY, images, { windows: false });
  assert.equal(made.windows, false);
  assert.equal(made.inventory, path.join(images, 'inventory-linux-only.csv'));
  const [original, linux] = [await specs(INVENTORY), await specs(made.inventory)];
  const linuxTypes = new Set(instanceTypes.linux.types);
  assert.equal(linux.length, original.length);
  for (const [i, spec] of linux.entries()) {
    const before = original[i]!;
    assert.equal(path.basename(spec.image), path.basename(before.image));
    assert.equal(path.dirname(spec.image), images);
    assert.equal(spec.platform, undefined, spec.name);
    assert.ok(linuxTypes.has(spec.instanceType), `${spec.name}: ${spec.instanceType} is on VM Import's Linux list`);
    assert.deepEqual(
      spec.dataDisks?.map((d) => path.basename(d)),
      before.dataDisks?.map((d) => path.basename(d))
    );
    assert.ok((spec.dataDisks ?? []).every((d) => path.dirname(d) === images));
    const { image: _a, platform: _b, instanceType: _c, dataDisks: _g, ...rest } = spec;
    const { image: _d, platform: _e, instanceType: _f, dataDisks: _h, ...restBefore } = before;
    assert.deepEqual(rest, restBefore, 'everything else as in examples/inventory.csv');
  }
  assertJudgedAsPlanned(await judgeAll(made.inventory, images), await planned(made.inventory));
  await assertValidatedAsPlanned(made.inventory);
});

test('linuxOnlyInventory refuses a Windows type it has no Linux stand-in for, and quoted cells', async () => {
  const header = 'name,image,format,architecture,instance_type,platform';
  assert.throws(() => linuxOnlyInventory(`${header}\nw,images/w.vhd,VHD,x86_64,m7i.large,Windows\n`), /m7i/);
  assert.throws(() => linuxOnlyInventory(`${header}\n"w",images/w.vhd,VHD,x86_64,m5.large,Windows\n`));
  const text = linuxOnlyInventory(`${header}\nw,images/w.vhd,VHD,x86_64,m5.large,Windows\n`);
  const read = await parseInventory(text, dir, { checkImages: false });
  assert.ok(read.ok);
  assert.deepEqual(
    [read.rows[0]!.spec.image, read.rows[0]!.spec.instanceType, read.rows[0]!.spec.platform],
    [path.join(dir, 'w.vhd'), 'm3.large', undefined]
  );
});
