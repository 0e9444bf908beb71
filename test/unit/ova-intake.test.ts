/**
 * OVA intake (activities/ova): tar archives made by GNU tar in its three formats, OVF descriptors written
 * here; the boot disk found in place, the OVF's OS, CPUs and memory read, an instance type VM Import takes
 * suggested; and the OVAs it refuses, each with what to do.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { preflight } from '../../activities/disk-image/preflight';
import { readInventory } from '../../client/inventory/read-inventory';
import { renderProblems } from '../../client/output/problems';
import { suggestInstanceType } from '../../activities/ova/guest-os';
import { parseOvf, unitMultiplier } from '../../activities/ova/ovf';
import { LINUX_INSTANCE_TYPES } from '../../common/vm-import-rules';
import { makeImage } from '../helpers/images';
import { makeOva, ovfDescriptor } from '../helpers/ova';
import { tempDir } from '../helpers/testbed';

let tmp: { dir: string; remove(): Promise<void> };
let disk: string;
let second: string;

before(async () => {
  tmp = await tempDir('vmconvoy-ova-');
  disk = await makeImage(tmp.dir, 'disk1.vmdk', 'stream-vmdk', { virtualMiB: 32, randomMiB: 3 });
  second = await makeImage(tmp.dir, 'disk2.vmdk', 'stream-vmdk', { virtualMiB: 16, randomMiB: 1 });
});
after(() => tmp.remove());

async function refusedWith(image: string, type: string, message: RegExp): Promise<void> {
  await assert.rejects(
    preflight({ image }),
    (err: unknown) => err instanceof ApplicationFailure && err.type === type && message.test(err.message)
  );
}

describe('OVA intake', () => {
  for (const tarFormat of ['gnu', 'posix', 'ustar'] as const) {
    it(`finds the boot disk's byte range in a ${tarFormat} tar and reads the OVF`, async () => {
      const ova = await makeOva(tmp.dir, `vm-${tarFormat}`, {
        disks: [disk],
        tarFormat,
        vmwOsType: 'windows9Server64Guest',
        osDescription: 'Microsoft Windows Server 2016 (64-bit)',
        cpus: 4,
        memoryMiB: 16384,
      });
      const result = await preflight({ image: ova, format: 'OVA' });
      assert.equal(result.format, 'VMDK');
      assert.equal(result.sourceFormat, 'OVA');
      assert.equal(result.virtualBytes, 32 * 1024 * 1024);
      assert.equal(result.imageBytes, (await stat(disk)).size);
      assert.equal(result.containerBytes, (await stat(ova)).size);
      // The bytes at that range are the disk itself.
      const inside = execFileSync(
        'dd',
        [`if=${ova}`, 'bs=512', `skip=${result.imageOffset! / 512}`, `count=${result.imageBytes / 512}`],
        {
          maxBuffer: 64 * 1024 * 1024,
          stdio: ['ignore', 'pipe', 'ignore'],
        }
      );
      assert.ok(inside.equals(execFileSync('cat', [disk], { maxBuffer: 64 * 1024 * 1024 })));
      assert.deepEqual(result.ovf, {
        disks: 1,
        osType: 'windows9Server64Guest / Microsoft Windows Server 2016 (64-bit)',
        platform: 'Windows',
        cpus: 4,
        memoryMiB: 16384,
        suggestedInstanceType: 'r3.xlarge', // 4 vCPUs and 30.5 GiB: m3.xlarge's 15 GiB is too little
      });
    });
  }

  it('takes an OVA with data disks (its boot disk first), refuses a compressed disk and a tar whose first file is not the OVF', async () => {
    const two = await preflight({ image: await makeOva(tmp.dir, 'two', { disks: [disk, second] }) });
    assert.deepEqual([two.format, two.ovf?.disks, two.virtualBytes], ['VMDK', 2, 32 * 1024 * 1024]);
    await refusedWith(
      await makeOva(tmp.dir, 'gz', { disks: [disk], compression: 'gzip' }),
      'ImageFormatUnsupported',
      /a gzip-compressed disk inside the OVA/
    );
    const wrongOrder = path.join(tmp.dir, 'disk-first.ova');
    await writeFile(path.join(tmp.dir, 'late.ovf'), ovfDescriptor([{ href: 'disk1.vmdk', size: 1, capacity: 1 }], {}));
    execFileSync('tar', ['-C', tmp.dir, '-cf', wrongOrder, 'disk1.vmdk', 'late.ovf']);
    await refusedWith(wrongOrder, 'ImageFormatUnsupported', /first file is "disk1\.vmdk", not an OVF descriptor/);
  });

  it('refuses an OVA cut short inside its disk', async () => {
    const ova = await makeOva(tmp.dir, 'cut', { disks: [disk] });
    execFileSync('truncate', ['-s', String((await stat(ova)).size - 20_000), ova]);
    await refusedWith(ova, 'ImageUnreadable', /not a complete tar archive: the member at byte \d+ runs past the end/);
  });
});

describe('OVF reading and the instance type suggested', () => {
  it('reads allocation units as the OVF specification writes them', () => {
    assert.equal(unitMultiplier('byte * 2^20'), 2 ** 20);
    assert.equal(unitMultiplier('byte * 2^30'), 2 ** 30);
    assert.equal(unitMultiplier('byte'), 1);
    assert.equal(unitMultiplier('MegaBytes'), 2 ** 20);
    assert.equal(unitMultiplier('hertz * 10^6'), undefined);
    const ovf = parseOvf(
      ovfDescriptor([{ href: 'a.vmdk', size: 10, capacity: 5 * 2 ** 30 }], { cpus: 1, memoryMiB: 512 })
    );
    assert.deepEqual(ovf.disks, [
      {
        diskId: 'vmdisk1',
        href: 'a.vmdk',
        capacityBytes: 5 * 2 ** 30,
        compression: undefined,
        format: 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized',
      },
    ]);
    assert.equal(ovf.memoryMiB, 512);
  });

  it('suggests the smallest type VM Import takes for the platform that holds the CPUs and memory', () => {
    assert.equal(suggestInstanceType('Linux', 1, 512), 't2.micro');
    assert.equal(suggestInstanceType('Linux', 2, 4096), 't2.medium');
    assert.equal(suggestInstanceType('Linux', 8, 60000), 'r3.2xlarge');
    assert.equal(suggestInstanceType('Linux', 64, 10 ** 6), 'r3.8xlarge', 'larger than any: the largest');
    assert.equal(suggestInstanceType(undefined, 2, 4096), undefined);
    for (const cpus of [1, 2, 4, 8, 16, 32])
      assert.ok(LINUX_INSTANCE_TYPES.includes(suggestInstanceType('Linux', cpus, cpus * 4096)!));
  });
});

describe('validate', () => {
  it('says which rows are converted and the scratch space, and what an OVA holds; the detected container is the format', async () => {
    const qcow2 = await makeImage(tmp.dir, 'kvm.qcow2', 'qcow2', { virtualMiB: 64, randomMiB: 5 });
    const ova = await makeOva(tmp.dir, 'inv', { disks: [disk], cpus: 2, memoryMiB: 4096 });
    const csv = path.join(tmp.dir, 'inventory.csv');
    await writeFile(
      csv,
      [
        'name,image,architecture,instance_type,inspection',
        `kvm,${qcow2},x86_64,t2.micro,skip`,
        `vsphere,${ova},x86_64,t2.micro,skip`,
      ].join('\n')
    );
    const result = await readInventory(csv);
    assert.ok(result.ok);
    assert.deepEqual(
      result.rows.map((r) => r.spec.format),
      ['QCOW2', 'OVA']
    );
    const text = renderProblems('inventory.csv', result);
    assert.match(
      text,
      /inventory\.csv:2 \[image\]: qcow2 \(v3\) image: converted to a stream-optimized VMDK on the site worker before the upload; needs up to [67] MiB of scratch space there/
    );
    assert.match(
      text,
      /inventory\.csv:3 \[image\]: OVA \(stream-optimized VMDK disk1\.vmdk\), uploaded from inside the OVA \(no copy\): OS ubuntu64Guest \/ Ubuntu Linux \(64-bit\), 2 CPUs, 4\.0 GiB memory; VM Import takes t2\.medium for this Linux guest/
    );
    assert.match(text, /2 VMs in 1 wave, every row and image valid/);
  });
});
