/**
 * The guest inside the containers VM Import does not take as they are: an OVA's boot disk is read in place
 * (the stream-optimized VMDK at its byte range inside the tar) at `validate` and pre-flight; a QCOW2 or
 * VHDX is inspected on the site worker right after its conversion (activities/convert-image.ts), before
 * any upload, and `validate` says so. Real guests (sfdisk, mke2fs -d) put into each container by qemu-img
 * and tar: Ubuntu 22.04 passes, CentOS 4 (kernel 2.6.9) is refused naming its kernel.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { convertImage } from '../../activities/convert-image';
import { preflight, preflightVm } from '../../activities/disk-image/preflight';
import { guestReaderTally } from '../../activities/guest/disk-reader';
import { inspectGuest } from '../../activities/guest/inspect-guest';
import { validateCommand } from '../../client/commands/validate';
import { renderProblems } from '../../client/output/problems';
import { vmSpecSchema } from '../../common/contracts/migration';
import { FailureType } from '../../common/failures';
import type { OtherContainer } from '../helpers/guest-containers';
import { makeGuestIn } from '../helpers/guest-containers';
import { GUESTS } from '../helpers/guest-images';
import { tempDir } from '../helpers/testbed';

let tmp: { dir: string; remove(): Promise<void> };
let images: string;
let scratch: string;
const made = new Map<string, string>();
const CONTAINERS: OtherContainer[] = ['ova', 'qcow2', 'vhdx'];

before(async () => {
  tmp = await tempDir('vmconvoy-guest-containers-');
  images = path.join(tmp.dir, 'images');
  scratch = path.join(tmp.dir, 'scratch');
  await Promise.all([mkdir(images), mkdir(scratch)]);
  for (const c of CONTAINERS)
    for (const g of ['ubuntu2204', 'centos4'] as const)
      made.set(`${g}.${c}`, await makeGuestIn(images, `${g}-${c}`, GUESTS[g], c));
});
after(() => tmp.remove());

const image = (guest: string, container: OtherContainer): string => made.get(`${guest}.${container}`)!;
const spec = (name: string, file: string, format: string) =>
  vmSpecSchema.parse({ name, image: file, format, architecture: 'x86_64', instanceType: 't2.medium' });

function assertRefusedCentos4(err: unknown): true {
  assert.ok(err instanceof ApplicationFailure, String(err));
  assert.equal(err.type, FailureType.GuestRefused);
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, /rule linux-kernel/);
  assert.match(err.message, /2\.6\.9-103\.EL/);
  assert.equal((err.details?.[0] as { verdict?: string }).verdict, 'refuse');
  return true;
}

describe('OVA: the boot disk read in place, through an offset', () => {
  test('the reader finds the guest inside the tar and reads only a little of it', async () => {
    const ok = await inspectGuest(image('ubuntu2204', 'ova'), 'OVA', { imageRoots: [images] });
    assert.equal(ok.verdict, 'ok', JSON.stringify(ok.reasons));
    assert.equal(ok.os, 'Ubuntu 22.04.4 LTS');
    assert.match(ok.container, /stream-optimized VMDK inside the OVA/);
    assert.ok(ok.bytesRead > 0 && ok.bytesRead < 4 * 1024 * 1024, String(ok.bytesRead));
    const refused = await inspectGuest(image('centos4', 'ova'), undefined, { imageRoots: [images] });
    assert.equal(refused.verdict, 'refuse');
    assert.ok(refused.reasons.some((r) => r.rule === 'linux-kernel' && r.message.includes('2.6.9')));
  });

  test('pre-flight: an ok guest passes with its inspection, CentOS 4 is GuestRefused', async () => {
    const ok = await preflightVm(spec('ova-ok', image('ubuntu2204', 'ova'), 'OVA'), {
      imageRoots: [images],
      qemuImg: false,
    });
    assert.equal(ok.inspection?.verdict, 'ok');
    assert.equal(ok.inspection?.os, 'Ubuntu 22.04.4 LTS');
    assert.equal(ok.sourceFormat, 'OVA');
    await assert.rejects(
      preflightVm(spec('ova-old', image('centos4', 'ova'), 'OVA'), { imageRoots: [images], qemuImg: false }),
      assertRefusedCentos4
    );
  });

  test('validate refuses the CentOS 4 OVA on its line and passes the Ubuntu one', async () => {
    const inv = path.join(tmp.dir, 'ova.csv');
    await writeFile(
      inv,
      'name,image,architecture,instance_type\n' +
        `a,${image('ubuntu2204', 'ova')},x86_64,t2.medium\n` +
        `b,${image('centos4', 'ova')},x86_64,t2.medium\n`
    );
    const result = await validateCommand(inv);
    const text = renderProblems('ova.csv', result);
    assert.ok(!result.ok, text);
    assert.deepEqual(
      result.errors.map((e) => [e.line, e.column]),
      [[3, 'image']],
      text
    );
    assert.match(result.errors[0]!.message, /2\.6\.9-103\.EL/);
    assert.equal(result.inspections?.find((i) => i.vm === 'a')?.inspection.verdict, 'ok');
  });
});

describe('QCOW2 and VHDX: inspected after the conversion, before the upload', () => {
  test('validate and pre-flight say the guest is inspected after conversion (nothing read inside)', async () => {
    for (const c of ['qcow2', 'vhdx'] as const) {
      const before = guestReaderTally.disksOpened;
      const result = await preflightVm(spec(`pre-${c}`, image('centos4', c), c.toUpperCase()), {
        imageRoots: [images],
        qemuImg: false,
      });
      assert.equal(guestReaderTally.disksOpened, before, 'the reader does not open a qcow2 or VHDX');
      assert.equal(result.inspection?.verdict, 'warn');
      assert.deepEqual(
        result.inspection?.reasons.map((r) => r.rule),
        ['inspect-after-conversion']
      );
      const inv = path.join(tmp.dir, `${c}.csv`);
      await writeFile(inv, `name,image,architecture,instance_type\nvm,${image('centos4', c)},x86_64,t2.medium\n`);
      const checked = await validateCommand(inv);
      const text = renderProblems(`${c}.csv`, checked);
      assert.ok(checked.ok, text);
      assert.match(
        text,
        /vm: inspection warn; the guest inside a (QCOW2|VHDX) image is inspected on the site worker once it is converted/
      );
      assert.ok(
        checked.warnings?.some((w) => w.message.includes('[rule inspect-after-conversion]')),
        text
      );
    }
  });

  for (const c of ['qcow2', 'vhdx'] as const) {
    test(`${c}: the converted Ubuntu guest is inspected (ok); CentOS 4 is GuestRefused after conversion`, async () => {
      const convert = async (vm: string, file: string, inspect: boolean) => {
        const pre = await preflight({ image: file }, { imageRoots: [images] });
        return convertImage(
          { scratch: { dir: scratch }, imageRoots: [images] },
          {
            batch: 'b',
            vm,
            image: file,
            imageIdentity: pre.imageIdentity,
            qemuFormat: c,
            inspectGuest: inspect ? {} : undefined,
          }
        );
      };
      const ok = await convert(`ok-${c}`, image('ubuntu2204', c), true);
      assert.equal(ok.inspection?.verdict, 'ok', JSON.stringify(ok.inspection));
      assert.equal(ok.inspection?.os, 'Ubuntu 22.04.4 LTS');
      assert.equal(ok.inspection?.kernel, '5.15.0-91-generic');
      await assert.rejects(convert(`old-${c}`, image('centos4', c), true), assertRefusedCentos4);
      // A retry finds the finished conversion and is refused again (the marker does not skip the look).
      await assert.rejects(convert(`old-${c}`, image('centos4', c), true), assertRefusedCentos4);
      // A row with inspection=skip asks for no look: converted, nothing judged.
      const skipped = await convert(`skip-${c}`, image('centos4', c), false);
      assert.equal(skipped.inspection, undefined);
      assert.ok((await readdir(path.dirname(skipped.image))).includes('disk.vmdk'));
    });
  }
});
