import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { InventoryProblem, InventoryResult } from '../../client/inventory/read-inventory';
import type { ReadInventoryOptions } from '../../client/inventory/read-inventory';
import { readInventory as readWithGuests } from '../../client/inventory/read-inventory';
import { makeImage } from '../helpers/images';
import { tempDir } from '../helpers/testbed';

/**
 * These images are random bytes, not guests: the CSV reader is what is tested here, so the look inside the
 * guest is left out (it is tested on real guests in validate-guests.test.ts).
 */
const readInventory = (file: string, opts: ReadInventoryOptions = {}): Promise<InventoryResult> =>
  readWithGuests(file, { inspectGuests: false, ...opts });

let dir: { dir: string; remove(): Promise<void> };
before(async () => {
  dir = await tempDir('vmconvoy-inventory-');
  await mkdir(path.join(dir.dir, 'images'));
  await makeImage(path.join(dir.dir, 'images'), 'disk.vmdk', 'stream-vmdk', { virtualMiB: 4, randomMiB: 1 });
  await makeImage(path.join(dir.dir, 'images'), 'disk.vhd', 'dynamic-vhd', { virtualMiB: 4, randomMiB: 1 });
  // A qcow2 overlay: qcow2 images are converted on the site, but not one whose data is in a backing file.
  const base = await makeImage(dir.dir, 'base.qcow2', 'qcow2', { virtualMiB: 4, randomMiB: 1 });
  execFileSync('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path.join(dir.dir, 'disk.qcow2')]);
  await writeFile(path.join(dir.dir, 'user-data.sh'), '#!/bin/sh\necho hi\n');
  await writeFile(path.join(dir.dir, 'huge-user-data.sh'), 'x'.repeat(17 * 1024));
});
after(async () => dir?.remove());

async function csv(name: string, lines: string[]): Promise<string> {
  const file = path.join(dir.dir, name);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

function errorsOf(result: InventoryResult): InventoryProblem[] {
  assert.ok(!result.ok, `expected errors, got ${JSON.stringify(result)}`);
  return result.errors;
}

/** `line:column` of every problem, for compact assertions. */
const where = (errors: InventoryProblem[]): string[] => errors.map((e) => `${e.line}:${e.column ?? ''}`);

function problemAt(errors: InventoryProblem[], line: number, column?: string): InventoryProblem {
  const found = errors.find((e) => e.line === line && e.column === column);
  assert.ok(found, `no problem at ${line}:${column ?? ''} in ${JSON.stringify(errors, null, 1)}`);
  return found;
}

test('headers are case-insensitive, paths resolve from the CSV folder, formats are detected, rows sort by wave then file order', async () => {
  const file = await csv('ok.csv', [
    'Name, IMAGE ,Architecture,Instance_Type,Wave,Tags,Security_Groups,Monitoring,Platform,User_Data_File,Boot_Check,Shutdown_Behavior',
    'b-second,images/disk.vmdk,x86_64,t2.micro,2,team=web;env=prod,web;ssh,true,Windows,user-data.sh,TRUE,terminate',
    'a-first,images/disk.vhd,x86_64,t2.micro,1,,,,,,,',
    // i386 is a Windows-only architecture for VM Import (64-bit Linux only): see validate-guests.test.ts.
    'c-third,./images/disk.vmdk,i386,t2.micro,,,,false,Windows,,,',
  ]);
  const result = await readInventory(file);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(
    result.rows.map((r) => [r.row, r.line, r.spec.name, r.spec.wave]),
    [
      [0, 3, 'a-first', 1],
      [1, 4, 'c-third', 1],
      [2, 2, 'b-second', 2],
    ]
  );
  const b = result.rows[2]!.spec;
  assert.equal(b.image, path.join(dir.dir, 'images', 'disk.vmdk'));
  assert.equal(b.userDataFile, path.join(dir.dir, 'user-data.sh'));
  assert.deepEqual(
    [b.format, b.platform, b.tags, b.securityGroups, b.monitoring, b.bootCheck, b.shutdownBehavior],
    ['VMDK', 'Windows', { team: 'web', env: 'prod' }, ['web', 'ssh'], true, true, 'terminate']
  );
  const a = result.rows[0]!.spec;
  assert.deepEqual(
    [a.format, a.platform, a.monitoring, a.bootCheck, a.shutdownBehavior, a.securityGroups, a.tags],
    ['VHD', undefined, false, false, 'stop', [], {}]
  );
});

test('bad values are reported with their line and column, all at once', async () => {
  const file = await csv('values.csv', [
    'name,image,format,architecture,instance_type,platform,private_ip,volume_size_gib,monitoring,shutdown_behavior,wave,tags,boot_check,description',
    'web 01,images/disk.vmdk,QCOW,arm64,t2.micro,Solaris,10.0.0.300,-5,maybe,halt,0,team,yes,ok',
    ',,,,,,,,,,,,,',
    `ok-name,images/disk.vmdk,,x86_64,t2.micro,,,,,,1.5,a=1;a=2,,${'d'.repeat(300)}`,
  ]);
  const errors = errorsOf(await readInventory(file));
  const expected: Array<[number, string, RegExp]> = [
    [2, 'name', /"web 01": use 1-64 characters/],
    [2, 'format', /"QCOW" is not VMDK, RAW, VHD, QCOW2, VHDX or OVA/],
    [2, 'architecture', /"arm64" is not supported: use i386 or x86_64/],
    [2, 'platform', /write Windows, or leave it empty for Linux/],
    [2, 'private_ip', /not an IPv4 address/],
    [2, 'volume_size_gib', /whole number of at least 1/],
    [2, 'monitoring', /"maybe" must be true or false/],
    [2, 'shutdown_behavior', /use stop or terminate/],
    [2, 'wave', /"0" must be a whole number of at least 1/],
    [2, 'tags', /"team" is not key=value/],
    [2, 'boot_check', /"yes" must be true or false/],
    [4, 'wave', /"1.5" must be a whole number/],
    [4, 'tags', /tag "a" is given twice/],
  ];
  for (const [line, column, message] of expected) assert.match(problemAt(errors, line, column).message, message);
  // Line 3 is a spreadsheet's empty row: skipped, not an error.
  assert.ok(!errors.some((e) => e.line === 3), JSON.stringify(errors));

  const long = errorsOf(
    await readInventory(
      await csv('desc.csv', [
        'name,image,architecture,instance_type,description',
        `vm,images/disk.vmdk,x86_64,t2.micro,${'d'.repeat(300)}`,
      ])
    )
  );
  assert.deepEqual(where(long), ['2:description']);
  const required = errorsOf(
    await readInventory(await csv('req.csv', ['name,image,architecture,instance_type', 'vm,,,']))
  );
  assert.deepEqual(where(required), ['2:image', '2:architecture', '2:instance_type']);
  assert.match(required[0]!.message, /image is required/);
});

test('missing, unknown, duplicate and unnamed columns are reported on line 1', async () => {
  const errors = errorsOf(await readInventory(await csv('cols.csv', ['NAME,image,colour,Name,', 'a,b,c,d,e'])));
  assert.deepEqual(where(errors), ['1:colour', '1:', '1:name', '1:architecture', '1:instance_type']);
  assert.match(problemAt(errors, 1, 'colour').message, /unknown column "colour" \(columns: name, image,/);
  assert.ok(errors.some((e) => e.column === 'name' && /appears twice/.test(e.message)));
  assert.ok(errors.some((e) => e.column === undefined && /column 5 has no name/.test(e.message)));
  assert.match(problemAt(errors, 1, 'architecture').message, /missing column "architecture"/);
  assert.match(problemAt(errors, 1, 'instance_type').message, /missing column "instance_type"/);
});

test('CSV syntax errors, rows with the wrong number of cells, quoted multi-line cells, empty files', async () => {
  const file = await csv('syntax.csv', [
    'name,image,architecture,instance_type,description',
    'vm-1,images/disk.vmdk,x86_64,t2.micro,"two',
    'lines"',
    'vm-2,images/disk.vmdk,x86_64,t2.micro,fine,extra',
    'vm-3,images/disk.vmdk,x86_64',
    'vm-4,images/disk.vmdk,x86_64,t2.micro,"bad"quote',
    'vm-5,missing.raw,x86_64,t2.micro,',
  ]);
  const errors = errorsOf(await readInventory(file));
  assert.match(problemAt(errors, 4).message, /6 cells, but the header has 5 columns/);
  assert.match(problemAt(errors, 5).message, /3 cells, but the header has 5 columns/);
  assert.match(problemAt(errors, 6).message, /CSV syntax: Invalid Closing Quote/);
  // vm-1's description spans lines 2-3: it is valid and reported nowhere.
  assert.ok(!errors.some((e) => e.line === 2 || e.line === 3), JSON.stringify(errors));

  const empty = errorsOf(await readInventory(await csv('empty.csv', [])));
  assert.match(empty[0]!.message, /the inventory is empty/);
  const headerOnly = errorsOf(await readInventory(await csv('header.csv', ['name,image,architecture,instance_type'])));
  assert.match(headerOnly[0]!.message, /no VM rows/);
  const unclosed = errorsOf(
    await readInventory(await csv('unclosed.csv', ['name,image,architecture,instance_type', 'a,"b,x86_64,t2.micro']))
  );
  assert.match(unclosed[0]!.message, /CSV syntax: .*Quote Not Closed/);
  const none = errorsOf(await readInventory(path.join(dir.dir, 'nope.csv')));
  assert.deepEqual(
    [none[0]!.line, none[0]!.message],
    [0, `cannot read ${path.join(dir.dir, 'nope.csv')}: no such file`]
  );
});

test('duplicate names, missing and unsupported images, format mismatches and user-data files are found by pre-flight', async () => {
  const file = await csv('images.csv', [
    'name,image,format,architecture,instance_type,user_data_file',
    'vm-1,images/disk.vmdk,VHD,x86_64,t2.micro,',
    'vm-1,images/disk.vmdk,,x86_64,t2.micro,',
    'vm-3,nothere.raw,,x86_64,t2.micro,',
    'vm-4,disk.qcow2,,x86_64,t2.micro,',
    'vm-5,images/disk.vhd,,x86_64,t2.micro,no-such-user-data.sh',
    'vm-6,images/disk.vhd,,x86_64,t2.micro,huge-user-data.sh',
    'vm-7,images,,x86_64,t2.micro,',
  ]);
  const errors = errorsOf(await readInventory(file));
  assert.deepEqual(where(errors), [
    '2:image',
    '3:name',
    '4:image',
    '5:image',
    '6:user_data_file',
    '7:user_data_file',
    '8:image',
  ]);
  assert.match(
    problemAt(errors, 2, 'image').message,
    /declared as VHD in the inventory but is a .*VMDK.*Set format to VMDK/
  );
  assert.match(problemAt(errors, 3, 'name').message, /duplicate name "vm-1" \(also on line 2\)/);
  assert.match(problemAt(errors, 4, 'image').message, /nothere\.raw/);
  assert.match(
    problemAt(errors, 5, 'image').message,
    /a qcow2 overlay on a backing file .*base\.qcow2.*merge the chain/
  );
  assert.match(problemAt(errors, 6, 'user_data_file').message, /cannot read .*no-such-user-data\.sh \(ENOENT\)/);
  assert.match(problemAt(errors, 7, 'user_data_file').message, /EC2 allows 16 KiB/);
});

test('checkImages: false reads the rows without touching the images', async () => {
  const result = await readInventory(
    await csv('nocheck.csv', ['name,image,architecture,instance_type', 'vm,nothere.raw,x86_64,t2.micro']),
    { checkImages: false }
  );
  assert.ok(result.ok);
  assert.equal(result.rows[0]!.spec.format, undefined);
});

test("EC2 tag limits are enforced at validate: 50 per resource with vmconvoy's own, key 128, value 256 characters", async () => {
  const tags = (n: number, key = (i: number) => `k${i}`, value = () => 'v'): string =>
    Array.from({ length: n }, (_, i) => `${key(i)}=${value()}`).join(';');
  const read = async (tagCell: string) =>
    readInventory(
      await csv('tags.csv', [
        'name,image,architecture,instance_type,tags',
        `vm,images/disk.vmdk,x86_64,t2.micro,"${tagCell}"`,
      ]),
      {
        checkImages: false,
      }
    );
  // The inventory that made a 6 MiB page: 200 tags of 300 characters.
  const huge = errorsOf(
    await read(
      tags(
        200,
        (i) => `k${i}`,
        () => 'x'.repeat(300)
      )
    )
  );
  assert.deepEqual([...new Set(where(huge))], ['2:tags']);
  assert.ok(
    huge.some((e) => /make 203; EC2 allows 50 per resource/.test(e.message)),
    JSON.stringify(huge[0])
  );
  assert.ok(huge.some((e) => /the value has 300 characters; EC2 allows 256/.test(e.message)));
  // Name, vmconvoy:batch and vmconvoy:vm count: 47 of the operator's own fit, 48 do not; their own Name replaces ours.
  assert.ok((await read(tags(47))).ok);
  assert.match(errorsOf(await read(tags(48)))[0]!.message, /48 tags and vmconvoy's own .* make 51/);
  assert.ok((await read(`${tags(47)};Name=web`)).ok, "a Name tag replaces vmconvoy's");
  // Unicode characters, as AWS counts them, not UTF-16 units: 128 emoji are 256 units.
  assert.ok((await read(`${'😀'.repeat(128)}=${'é'.repeat(256)}`)).ok);
  const problems: Array<[string, RegExp]> = [
    [`${'k'.repeat(129)}=v`, /has 129 characters; EC2 allows 1-128/],
    [`k=${'😀'.repeat(257)}`, /the value has 257 characters/],
    ['AWS:owner=me', /keys starting with aws: are reserved/],
    ['owner=aws:me', /values starting with aws: are reserved/],
    ['vmconvoy:vm=other', /set by vmconvoy itself/],
  ];
  for (const [cell, message] of problems) assert.match(errorsOf(await read(cell))[0]!.message, message, cell);
});

test('10,000 rows over 200 image files validate, pre-flight included, in seconds', async () => {
  const big = path.join(dir.dir, 'big');
  await mkdir(big);
  for (let i = 0; i < 200; i++)
    await copyFile(
      path.join(dir.dir, 'images', i % 2 ? 'disk.vmdk' : 'disk.vhd'),
      path.join(big, `d${i}.${i % 2 ? 'vmdk' : 'vhd'}`)
    );
  const lines = ['name,image,architecture,instance_type,wave,tags'];
  for (let i = 0; i < 10_000; i++)
    lines.push(`vm-${i},big/d${i % 200}.${(i % 200) % 2 ? 'vmdk' : 'vhd'},x86_64,t2.micro,${1 + (i % 3)},n=${i}`);
  const file = await csv('big.csv', lines);
  const started = Date.now();
  const result = await readInventory(file);
  const ms = Date.now() - started;
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors.slice(0, 3)));
  assert.equal(result.rows.length, 10_000);
  assert.deepEqual(
    result.rows.slice(0, 2).map((r) => r.spec.name),
    ['vm-0', 'vm-3']
  );
  assert.equal(result.rows[9_999]!.spec.wave, 3);
  assert.ok(ms < 10_000, `${ms} ms`);
  console.log(`[inventory] 10,000 rows (200 images pre-flighted) in ${ms} ms`);

  // And 10,000 rows with one problem each are all reported.
  const bad = ['name,image,architecture,instance_type'];
  for (let i = 0; i < 10_000; i++) bad.push(`vm-${i},big/d1.vmdk,arm,t2.micro`);
  const errors = errorsOf(await readInventory(await csv('big-bad.csv', bad)));
  assert.equal(errors.length, 10_000);
  assert.equal(errors[9_999]!.line, 10_001);
});
