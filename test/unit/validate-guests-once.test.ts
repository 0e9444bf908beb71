/**
 * `validate` inspects each distinct image once, however many rows name it and by whatever path: the same
 * absolute path twice, `./` relative to the inventory, `sub/../`, a symbolic link and a hard link are one
 * file. Counted by the guest reader's own tally (activities/guest/disk-reader.ts `guestReaderTally`: disks
 * opened for inspection and bytes read from image files), against a one-row inventory of the same image.
 */
import assert from 'node:assert/strict';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { guestReaderTally } from '../../activities/guest/disk-reader';
import { validateCommand } from '../../client/commands/validate';
import type { InventoryResult } from '../../client/inventory/read-inventory';
import { renderProblems } from '../../client/output/problems';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import { tempDir } from '../helpers/testbed';

const HEADER = 'name,image,architecture,instance_type,platform,inspection';

let dir: { dir: string; remove(): Promise<void> };
let image: string;
before(async () => {
  dir = await tempDir('vmconvoy-validate-once-');
  image = await makeGuestImage(dir.dir, 'ubuntu.vmdk', GUESTS.ubuntu2204, 'stream-vmdk', { sizeMiB: 320 });
  await symlink(image, path.join(dir.dir, 'via-link.vmdk'));
  await link(image, path.join(dir.dir, 'hard-link.vmdk'));
  await mkdir(path.join(dir.dir, 'sub'));
});
after(async () => dir?.remove());

let seq = 0;
/** Validates the rows and returns what the guest reader did meanwhile. */
async function validate(images: string[]): Promise<{ result: InventoryResult; opened: number; bytes: number }> {
  const file = path.join(dir.dir, `inv-${++seq}.csv`);
  const rows = images.map((img, i) => `vm${i},${img},x86_64,t2.medium,,`);
  await writeFile(file, [HEADER, ...rows].join('\n') + '\n');
  const before = { ...guestReaderTally };
  const result = await validateCommand(file);
  return {
    result,
    opened: guestReaderTally.disksOpened - before.disksOpened,
    bytes: guestReaderTally.bytesRead - before.bytesRead,
  };
}

describe('validate: each distinct image inspected once', () => {
  test('six rows naming one file by five paths: one inspection, the bytes of one', async () => {
    const one = await validate([image]);
    assert.ok(one.result.ok, renderProblems('inv.csv', one.result));
    assert.equal(one.opened, 1);
    assert.ok(one.bytes > 0);

    const paths = [
      image,
      image,
      './ubuntu.vmdk',
      'sub/../ubuntu.vmdk',
      path.join(dir.dir, 'via-link.vmdk'),
      path.join(dir.dir, 'hard-link.vmdk'),
    ];
    const many = await validate(paths);
    assert.ok(many.result.ok, renderProblems('inv.csv', many.result));
    assert.equal(many.opened, 1, 'the image was opened for inspection more than once');
    assert.equal(many.bytes, one.bytes);
    // Every row still carries the verdict.
    assert.equal(many.result.inspections?.length, paths.length);
    for (const i of many.result.inspections ?? []) assert.equal(i.inspection.verdict, 'ok', i.vm);
  });

  test('two different files are two inspections (the tally counts each)', async () => {
    const other = await makeGuestImage(dir.dir, 'other.vhd', GUESTS.centos511, 'fixed-vhd', { sizeMiB: 320 });
    const two = await validate([image, other, path.join(dir.dir, 'via-link.vmdk')]);
    assert.equal(two.opened, 2);
  });
});
