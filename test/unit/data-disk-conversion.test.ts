/**
 * Data disks EC2 does not take as they are (issue 19), the parts that need no server: pre-flight plans their
 * conversion instead of refusing them; `validate` names each disk it converts and the scratch space the VM
 * needs in total; the VM's scratch check refuses the sum before any conversion, naming every disk; a data
 * disk's scratch folder (inside its VM's) is counted by other conversions and survives its boot disk's.
 * Images are made by qemu-img (random bytes: the guest look is skipped on every row).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { preflightDataDisk } from '../../activities/data-disks';
import { CONVERTED_NAME, convertImage } from '../../activities/convert-image';
import { preflight } from '../../activities/disk-image/preflight';
import {
  RESERVATION,
  checkScratchSpace,
  checkVmScratchSpace,
  scratchFolder,
} from '../../activities/disk-image/scratch';
import { validateCommand } from '../../client/commands/validate';
import { renderProblems } from '../../client/output/problems';
import { dataDiskLocation } from '../../common/contracts/data-disks';
import { makeImage } from '../helpers/images';
import { tempDir } from '../helpers/testbed';

let tmp: { dir: string; remove(): Promise<void> };
let images: string;
let boot: string;
let dataQcow2: string;
let dataVhdx: string;
let dataRaw: string;
let bootQcow2: string;

before(async () => {
  tmp = await tempDir('vmconvoy-disk-conv-');
  images = path.join(tmp.dir, 'images');
  await mkdir(images);
  boot = await makeImage(images, 'boot.raw', 'raw', { virtualMiB: 16, randomMiB: 2 });
  bootQcow2 = await makeImage(images, 'boot.qcow2', 'qcow2', { virtualMiB: 16, randomMiB: 3 });
  dataQcow2 = await makeImage(images, 'data.qcow2', 'qcow2', { virtualMiB: 24, randomMiB: 4 });
  dataVhdx = await makeImage(images, 'data.vhdx', 'vhdx', { virtualMiB: 32, randomMiB: 5 });
  dataRaw = await makeImage(images, 'data.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
});
after(() => tmp.remove());

const MiB = 2 ** 20;
const mibText = (bytes: number) => `${Math.ceil(bytes / MiB)} MiB`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('pre-flight plans a qcow2 or VHDX data disk conversion (VMDK uploaded) instead of refusing it', async () => {
  for (const [image, sourceFormat, qemuFormat] of [
    [dataQcow2, 'QCOW2', 'qcow2'],
    [dataVhdx, 'VHDX', 'vhdx'],
  ] as const) {
    const found = await preflightDataDisk({ ref: { image }, disk: 1 }, { imageRoots: [images] });
    assert.equal(found.format, 'VMDK', image);
    assert.equal(found.sourceFormat, sourceFormat);
    assert.equal(found.conversion?.qemuFormat, qemuFormat);
    // At least the data it holds, never more than the bound for its whole virtual size.
    assert.ok(found.conversion.scratchBytes > 4 * MiB && found.conversion.scratchBytes < found.virtualBytes + 2 * MiB);
  }
  const raw = await preflightDataDisk({ ref: { image: dataRaw }, disk: 2 }, { imageRoots: [images] });
  assert.equal(raw.conversion, undefined, 'a RAW data disk is uploaded as it is');
});

test('validate names every data disk it converts and the scratch space the VM needs in total', async () => {
  const csv = path.join(tmp.dir, 'inv.csv');
  await writeFile(
    csv,
    [
      'name,image,architecture,instance_type,platform,inspection',
      `plain,${boot};${dataRaw},x86_64,t2.medium,,skip`,
      `mixed,${boot};${dataQcow2};${dataRaw};${dataVhdx},x86_64,t2.medium,,skip`,
      `allconv,${bootQcow2};${dataQcow2},x86_64,t2.medium,,skip`,
    ].join('\n') + '\n'
  );
  const result = await validateCommand(csv, { imageRoots: [images] });
  const text = renderProblems('inv.csv', result);
  assert.ok(result.ok, text);
  const plan = async (image: string) =>
    (await preflightDataDisk({ ref: { image }, disk: 1 }, { imageRoots: [images] })).conversion!.scratchBytes;
  const [q, v, b] = [
    await plan(dataQcow2),
    await plan(dataVhdx),
    (await preflight({ image: bootQcow2 })).conversion!.scratchBytes,
  ];

  const linesOf = (line: number) => text.split('\n').filter((l) => l.startsWith(`inv.csv:${line} [image]: `));
  // Row 2: nothing converted, so no conversion note and no scratch total.
  assert.equal(linesOf(2).filter((l) => /converted|scratch/.test(l)).length, 0, linesOf(2).join('\n'));
  // Row 3: data disks 1 and 3 converted, each named with its file and its own scratch need; disk 2 (RAW) not.
  const row3 = linesOf(3).join('\n');
  assert.match(
    row3,
    new RegExp(
      `data disk 1 \\(${escape(dataQcow2)}\\): .*converted to a stream-optimized VMDK on the site worker before the upload; needs up to ${mibText(q)} of scratch space there`
    )
  );
  assert.match(row3, new RegExp(`data disk 3 \\(${escape(dataVhdx)}\\): .*needs up to ${mibText(v)} of scratch space`));
  assert.doesNotMatch(row3, /data disk 2 \(/);
  assert.match(
    row3,
    new RegExp(
      `2 of its 4 disks are converted on the site worker: up to ${mibText(q + v)} of scratch space there in total \\(data disk 1 ${mibText(q)}, data disk 3 ${mibText(v)}\\), checked before the first conversion`
    )
  );
  // Row 4: the boot disk's conversion counts in the total too.
  assert.match(
    linesOf(4).join('\n'),
    new RegExp(
      `2 of its 2 disks are converted .*up to ${mibText(b + q)} .*\\(boot disk ${mibText(b)}, data disk 1 ${mibText(q)}\\)`
    )
  );
});

test("the VM's scratch check refuses the sum before any conversion, naming every disk; no folder is made", async () => {
  const scratch = path.join(tmp.dir, 'scratch-sum');
  const loc = { batch: 'b', vm: 'db-01', namespace: 'default' };
  const parts = [
    { what: 'boot disk', bytes: 5 * MiB },
    { what: 'data disk 1 (/img/a.qcow2)', bytes: 6 * MiB },
  ];
  // Each part alone fits under the 8 MiB cap; together they do not.
  await assert.rejects(
    checkVmScratchSpace({ dir: scratch, capBytes: 8 * MiB }, loc, parts),
    (err: unknown) =>
      err instanceof ApplicationFailure &&
      err.type === 'ScratchSpaceShort' &&
      err.message.includes(
        'VM db-01 converts 2 disks on the site worker (boot disk 5 MiB, data disk 1 (/img/a.qcow2) 6 MiB)'
      ) &&
      err.message.includes(
        `up to 11 MiB of scratch space in total, but the scratch folder ${scratch} (capped at 8 MiB) has 8 MiB free`
      ) &&
      err.message.includes('Nothing was converted')
  );
  assert.deepEqual(await readdir(scratch, { recursive: true }), [], 'the check makes no folder of the VM');
  const ok = await checkVmScratchSpace({ dir: scratch, capBytes: 12 * MiB }, loc, parts);
  assert.equal(ok.neededBytes, 11 * MiB);
});

test("a data disk's running conversion counts against others; its boot disk's conversion leaves it alone", async () => {
  const scratch = path.join(tmp.dir, 'scratch-nested');
  const vm = { batch: 'b', vm: 'web-01', namespace: 'default' };
  // Data disk 1 of web-01 is converting: 1 MiB written, 10 MiB reserved.
  const diskFolder = scratchFolder(scratch, dataDiskLocation(vm, 1));
  await mkdir(diskFolder, { recursive: true });
  await writeFile(path.join(diskFolder, `${CONVERTED_NAME}.partial`), Buffer.alloc(MiB));
  await writeFile(path.join(diskFolder, RESERVATION), JSON.stringify({ bytes: 10 * MiB }));
  // Another VM with 12 MiB of cap left 2 MiB after the data disk's claim: 3 MiB is refused, 1 MiB fits.
  const other = scratchFolder(scratch, { ...vm, vm: 'other' });
  await assert.rejects(
    checkScratchSpace({ dir: scratch, capBytes: 12 * MiB }, other, 3 * MiB),
    (err: unknown) =>
      err instanceof ApplicationFailure && /other conversions hold or will hold 10 MiB/.test(err.message)
  );
  await checkScratchSpace({ dir: scratch, capBytes: 12 * MiB }, other, MiB);
  // The VM's own check leaves its whole folder (boot and data disks) out of "others".
  await checkVmScratchSpace({ dir: scratch, capBytes: 12 * MiB }, vm, [{ what: 'data disk 1', bytes: 11 * MiB }]);

  // The boot disk converts in the VM's folder, which holds the data disk's: its redo deletes only its files.
  const pre = await preflight({ image: bootQcow2 }, { imageRoots: [images] });
  const done = await convertImage(
    { scratch: { dir: scratch }, imageRoots: [images] },
    { ...vm, image: bootQcow2, imageIdentity: pre.imageIdentity, qemuFormat: 'qcow2' }
  );
  assert.equal(path.dirname(done.image), scratchFolder(scratch, vm));
  execFileSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'vmdk', bootQcow2, done.image]);
  assert.deepEqual((await readdir(diskFolder)).sort(), [`${CONVERTED_NAME}.partial`, RESERVATION]);
});
