/**
 * The inventory's image lists (issue 19): `image` holds the boot disk, then the data disks separated by `;`,
 * or one OVA whose OVF lists several disks. Every problem names its line, its column and which disk; a
 * valid row with data disks gets a note with its totals. Images are made by qemu-img (random bytes: the
 * guest look is left out, as in inventory-reader.test.ts).
 */
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { InventoryResult } from '../../client/inventory/read-inventory';
import { readInventory } from '../../client/inventory/read-inventory';
import { preflightDataDisk } from '../../activities/data-disks';
import { preflight } from '../../activities/disk-image/preflight';
import { dataDiskLocation, dataDiskRefs } from '../../common/contracts/data-disks';
import { dataDiskDevice, vmSpecSchema } from '../../common/contracts/migration';
import { instanceMismatches } from '../../activities/validate';
import { makeImage } from '../helpers/images';
import { makeOva } from '../helpers/ova';
import { tempDir } from '../helpers/testbed';

let dir: { dir: string; remove(): Promise<void> };
let boot: string;
let dataA: string;
let dataB: string;
before(async () => {
  dir = await tempDir('vmconvoy-data-disks-');
  boot = await makeImage(dir.dir, 'boot.vmdk', 'stream-vmdk', { virtualMiB: 8, randomMiB: 1 });
  dataA = await makeImage(dir.dir, 'data-a.raw', 'raw', { virtualMiB: 4, randomMiB: 1 });
  dataB = await makeImage(dir.dir, 'data-b.vhd', 'dynamic-vhd', { virtualMiB: 6, randomMiB: 1 });
  await makeImage(dir.dir, 'data.qcow2', 'qcow2', { virtualMiB: 4, randomMiB: 1 });
});
after(async () => dir?.remove());

async function read(name: string, rows: string[]): Promise<InventoryResult> {
  const file = path.join(dir.dir, name);
  await writeFile(file, ['name,image,architecture,instance_type,platform,inspection', ...rows].join('\n') + '\n');
  return readInventory(file, { inspectGuests: false });
}

test('device names: data disk 1 at /dev/sdf, 11 at /dev/sdp; disks live in folders inside the VM', () => {
  assert.deepEqual([1, 2, 11].map(dataDiskDevice), ['/dev/sdf', '/dev/sdg', '/dev/sdp']);
  assert.deepEqual(dataDiskLocation({ batch: 'b', vm: 'v', namespace: 'n' }, 2), {
    batch: 'b',
    vm: 'v/disk-2',
    namespace: 'n',
  });
  assert.deepEqual(dataDiskRefs({ image: '/a.ova' }, 3), [
    { image: '/a.ova', ovaDisk: 1 },
    { image: '/a.ova', ovaDisk: 2 },
  ]);
  assert.deepEqual(dataDiskRefs({ image: '/a.raw', dataDisks: ['/b.raw'] }, undefined), [{ image: '/b.raw' }]);
  assert.deepEqual(dataDiskRefs({ image: '/a.raw' }, undefined), []);
});

test('a boot disk and two data disks: the spec lists them in order; the note gives the totals and devices', async () => {
  const result = await read('ok.csv', [
    'plain,boot.vmdk,x86_64,m5.large,Windows,skip',
    'multi," boot.vmdk ; data-a.raw;data-b.vhd",x86_64,m5.large,Windows,skip',
  ]);
  assert.ok(result.ok, JSON.stringify(result));
  const [plain, multi] = result.rows;
  assert.equal(plain!.spec.dataDisks, undefined);
  assert.equal(multi!.spec.image, boot);
  assert.deepEqual(multi!.spec.dataDisks, [dataA, dataB]);
  const note = result.notes?.find((n) => n.line === 3);
  assert.ok(note, JSON.stringify(result.notes));
  const bytes = (await stat(boot)).size + (await stat(dataA)).size + (await stat(dataB)).size;
  assert.equal(note.column, 'image');
  assert.match(
    note.message,
    new RegExp(`^3 disks, ${bytes} bytes to upload, ${(8 + 4 + 6) * 1024 * 1024} bytes virtual`)
  );
  assert.match(note.message, /data-a\.raw \(8 GiB\) at \/dev\/sdf, .*data-b\.vhd \(8 GiB\) at \/dev\/sdg/);
  assert.equal(
    result.notes?.some((n) => n.line === 2),
    false,
    'a row without data disks gets no totals note'
  );
});

test("a VM with data disks may not name another account or Region (its volumes would land in the worker's)", async () => {
  const file = path.join(dir.dir, 'target.csv');
  await writeFile(
    file,
    [
      'name,image,architecture,instance_type,platform,inspection,region,aws_profile',
      'far,boot.vmdk;data-a.raw,x86_64,m5.large,Windows,skip,eu-west-1,',
      'near,boot.vmdk,x86_64,m5.large,Windows,skip,eu-west-1,',
    ].join('\n') + '\n'
  );
  const result = await readInventory(file, { inspectGuests: false });
  assert.equal(result.ok, false);
  const problems = 'errors' in result ? result.errors : [];
  assert.deepEqual(
    problems.map((p) => [p.line, p.column]),
    [[2, 'region']]
  );
  assert.match(problems[0]!.message, /leave region and aws_profile empty on this row/);
});

test('each bad data disk is reported on its line and column, naming which disk', async () => {
  const result = await read('bad.csv', [
    'missing,boot.vmdk;data-a.raw;nowhere.raw,x86_64,m5.large,Windows,skip',
    'qcow,boot.vmdk;data.qcow2,x86_64,m5.large,Windows,skip',
    'twice,boot.vmdk;data-a.raw;data-a.raw,x86_64,m5.large,Windows,skip',
    'empty,boot.vmdk;;data-a.raw,x86_64,m5.large,Windows,skip',
    'ova,boot.vmdk;vm.ova,x86_64,m5.large,Windows,skip',
    `many,boot.vmdk;${Array.from({ length: 12 }, (_, i) => `d${i}.raw`).join(';')},x86_64,m5.large,Windows,skip`,
  ]);
  assert.ok(!result.ok);
  const at = (line: number) => result.errors.filter((e) => e.line === line).map((e) => `${e.column}: ${e.message}`);
  assert.match(at(2).join('\n'), /^image: data disk 2 \(.*nowhere\.raw\): .*not/m);
  assert.equal(at(2).length, 1, at(2).join('\n'));
  // A qcow2 data disk is converted on the site worker like a boot disk (data-disk-conversion.test.ts).
  assert.deepEqual(at(3), [], 'a qcow2 data disk is not refused');
  assert.match(at(4).join('\n'), /data-a\.raw" is named twice/);
  assert.match(at(5).join('\n'), /an empty path between ;/);
  assert.match(at(6).join('\n'), /vm\.ova" is an OVA: name it alone/);
  assert.match(at(7).join('\n'), /12 data disks; vmconvoy attaches at most 11/);
});

test('an OVA with two disks: boot disk from the OVF first, the data disk from its own byte range', async () => {
  const ova = await makeOva(dir.dir, 'two', {
    disks: [boot, await makeImage(dir.dir, 'second.vmdk', 'stream-vmdk', { virtualMiB: 16, randomMiB: 1 })],
  });
  const found = await preflight({ image: ova });
  assert.equal(found.ovf?.disks, 2);
  assert.equal(found.imageBytes, (await stat(boot)).size);
  const data = await preflightDataDisk({ ref: { image: ova, ovaDisk: 1 }, disk: 1 });
  assert.deepEqual([data.format, data.virtualBytes, data.volumeSizeGib], ['VMDK', 16 * 1024 * 1024, 8]);
  assert.equal(data.imageBytes, (await stat(path.join(dir.dir, 'second.vmdk'))).size);
  assert.ok(data.imageOffset! > found.imageOffset!, 'the data disk lies after the boot disk in the tar');
  await assert.rejects(
    preflightDataDisk({ ref: { image: ova, ovaDisk: 2 }, disk: 2 }),
    /data disk 2 \(.*two\.ova#2\): .*lists 2 disk/
  );

  const result = await read('ova.csv', [`vm,${path.basename(ova)},x86_64,m5.large,Windows,skip`]);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.rows[0]!.spec.dataDisks, undefined, 'an OVA row lists no data disks: its OVF does');
  assert.ok(
    result.notes?.some((n) => /^2 disks, .* data disks: .*two\.ova#1 \(8 GiB\) at \/dev\/sdf$/.test(n.message)),
    JSON.stringify(result.notes)
  );
});

test('validation expects the data volumes at /dev/sdf, /dev/sdg beside the root, and names what differs', () => {
  const spec = vmSpecSchema.parse({ name: 'vm1', image: '/i', architecture: 'x86_64', instanceType: 'm3.medium' });
  const root = { DeviceName: '/dev/sda1', Ebs: { VolumeId: 'vol-r' } };
  const sdf = { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-a' } };
  const sdg = { DeviceName: '/dev/sdg', Ebs: { VolumeId: 'vol-b' } };
  const instance = (mappings: Array<typeof root>) => ({
    State: { Name: 'stopped' as const },
    Architecture: 'x86_64' as const,
    InstanceType: 'm3.medium' as const,
    BlockDeviceMappings: mappings,
  });
  assert.deepEqual(instanceMismatches(instance([root, sdf, sdg]), spec, ['vol-a', 'vol-b']), []);
  assert.deepEqual(
    instanceMismatches(
      instance([root, { ...sdf, Ebs: { VolumeId: 'vol-b' } }, { ...sdg, Ebs: { VolumeId: 'vol-a' } }]),
      spec,
      ['vol-a', 'vol-b']
    ),
    [
      'expected exactly 3 volumes, one at /dev/sda1, vol-a at /dev/sdf, vol-b at /dev/sdg; found /dev/sda1=vol-r, /dev/sdf=vol-b, /dev/sdg=vol-a',
    ]
  );
  // Without data volumes, a second volume is still one too many.
  assert.equal(instanceMismatches(instance([root, sdf]), spec).length, 1);
});
