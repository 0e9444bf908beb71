import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readInventory } from '../../client/inventory/read-inventory';
import { renderReport, reportRows } from '../../client/output';
import { makeImage } from '../helpers/images';
import { tempDir } from '../helpers/testbed';

let dir: { dir: string; remove(): Promise<void> };
before(async () => {
  dir = await tempDir('vmconvoy-inventory-');
  await makeImage(dir.dir, 'disk.vmdk', 'stream-vmdk', { virtualMiB: 4, randomMiB: 1 });
  await makeImage(dir.dir, 'disk.qcow2', 'qcow2', { virtualMiB: 4, randomMiB: 1 });
});
after(async () => dir?.remove());

async function csv(name: string, lines: string[]): Promise<string> {
  const file = path.join(dir.dir, name);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

test('headers are case-insensitive, images resolve from the CSV folder, formats are detected, rows sort by wave', async () => {
  const file = await csv('ok.csv', [
    'Name, IMAGE ,Architecture,Instance_Type,Wave,Tags,Security_Groups,Monitoring',
    'b-second,disk.vmdk,x86_64,t2.micro,2,team=web;env=prod,web;ssh,true',
    'a-first,disk.vmdk,x86_64,t2.micro,1,,,',
  ]);
  const result = await readInventory(file);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.rows.map((r) => [r.row, r.line, r.spec.name]), [[0, 3, 'a-first'], [1, 2, 'b-second']]);
  const b = result.rows[1]!.spec;
  assert.equal(b.image, path.join(dir.dir, 'disk.vmdk'));
  assert.equal(b.format, 'VMDK');
  assert.deepEqual([b.tags, b.securityGroups, b.monitoring], [{ team: 'web', env: 'prod' }, ['web', 'ssh'], true]);
});

test('every problem is reported at once with line and column: values, duplicates, missing and unsupported images', async () => {
  const file = await csv('bad.csv', [
    'name,image,format,architecture,instance_type,shutdown_behavior,monitoring',
    'vm-1,disk.vmdk,VHD,x86_64,t2.micro,,',
    'vm-1,disk.vmdk,,x86_64,t2.micro,,',
    'vm-3,nothere.raw,,x86_64,t2.micro,halt,maybe',
    'vm-4,disk.qcow2,,x86_64,t2.micro,,',
  ]);
  const result = await readInventory(file);
  assert.ok(!result.ok);
  const got = result.errors.map((e) => `${e.line}:${e.column ?? ''}`);
  for (const expected of ['2:image', '3:name', '4:monitoring', '5:image']) assert.ok(got.includes(expected), `${expected} in ${got.join(' ')}`);
  assert.match(result.errors.find((e) => e.line === 3)!.message, /duplicate name "vm-1" \(also on line 2\)/);
  assert.match(result.errors.find((e) => e.line === 2)!.message, /declared as VHD/);
  assert.match(result.errors.find((e) => e.line === 5)!.message, /qemu-img convert/);
});

test('missing and unknown columns, an empty file and CSV syntax errors are reported, not thrown', async () => {
  const missing = await readInventory(await csv('m.csv', ['name,image,colour', 'a,b,c']));
  assert.ok(!missing.ok);
  assert.deepEqual(missing.errors.map((e) => e.column).sort(), ['architecture', 'colour', 'instance_type']);
  const empty = await readInventory(await csv('e.csv', ['name,image,architecture,instance_type']));
  assert.ok(!empty.ok && /no VM rows/.test(empty.errors[0]!.message));
  const broken = await readInventory(await csv('s.csv', ['name,image,architecture,instance_type', 'a,"b,x86_64,t2.micro']));
  assert.ok(!broken.ok && /CSV syntax/.test(broken.errors[0]!.message));
});

test('10,000 rows validate in seconds', async () => {
  const lines = ['name,image,architecture,instance_type,wave'];
  for (let i = 0; i < 10_000; i++) lines.push(`vm-${i},disk.vmdk,x86_64,t2.micro,${1 + (i % 3)}`);
  const started = Date.now();
  const result = await readInventory(await csv('big.csv', lines));
  const ms = Date.now() - started;
  assert.ok(result.ok);
  assert.equal(result.rows.length, 10_000);
  assert.ok(ms < 30_000, `${ms} ms`);
  console.log(`[inventory] 10,000 rows with pre-flight in ${ms} ms`);
});

test('reports quote CSV cells and escape markdown pipes', () => {
  const rows = reportRows([
    { name: 'a', phase: 'Failed', percent: 0, conversionTaskId: null, instanceId: null, volumeId: null, bytesUploaded: 5, error: 'bad "x", y', errorType: 'ConversionFailed', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z' },
  ]);
  assert.equal(rows[0]!.duration_s, 60);
  assert.equal(renderReport(rows, 'csv').split('\n')[1], 'a,Failed,,,,5,2026-01-01T00:00:00.000Z,2026-01-01T00:01:00.000Z,60,ConversionFailed,"bad ""x"", y"');
  rows[0]!.error_message = 'a|b';
  assert.match(renderReport(rows, 'md'), /a\\\|b/);
});
