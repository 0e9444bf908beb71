/**
 * The ext file-system reader (balena's ext2fs: libext2fs in WebAssembly, one instance per process with a
 * fixed 16 MiB heap) must neither run out of memory on a hostile guest nor let one inspection spoil the
 * others running in the same worker. Before activities/guest/linux-files.ts read files in bounded pieces and
 * mounted one file system at a time, a guest with a 24 MiB /etc/os-release aborted the library ("Aborted(OOM)"):
 * that guest and the CentOS guests inspected beside it and after it were refused as having no operating
 * system. The demo met the same failure under load with ordinary guests pre-flighted at once. Disks are real
 * (sfdisk + mke2fs -d, as the demo makes them).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GuestInspection } from '../../activities/guest/inspect-guest';
import { inspectGuest } from '../../activities/guest/inspect-guest';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import { tempDir } from '../helpers/testbed';

let dir: { dir: string; remove(): Promise<void> };
let hostile: string;
let centos: string;
before(async () => {
  dir = await tempDir('vmconvoy-inspect-concurrent-');
  // Ubuntu, with 24 MiB of comment after its os-release lines: more than the reader's whole heap.
  const padded = {
    ...GUESTS.ubuntu2204,
    osRelease: `${GUESTS.ubuntu2204.osRelease}#${'x'.repeat(24 * 1024 * 1024)}\n`,
  };
  [hostile, centos] = await Promise.all([
    makeGuestImage(dir.dir, 'hostile.raw', padded, 'raw', { sizeMiB: 320 }),
    makeGuestImage(dir.dir, 'centos.vhd', GUESTS.centos511, 'dynamic-vhd', { sizeMiB: 320 }),
  ]);
});
after(async () => dir?.remove());

const inspect = (file: string): Promise<GuestInspection> => inspectGuest(file, undefined, { imageRoots: [dir.dir] });
const line = (r: GuestInspection): string => `${r.verdict} ${r.os ?? '-'} ${r.reasons.map((x) => x.rule).join('+')}`;

describe('ext file systems read by many inspections in one process', () => {
  test('a guest with a 24 MiB os-release and six CentOS guests at once: each judged on its own', async () => {
    const [big, ...others] = await Promise.all([inspect(hostile), ...Array.from({ length: 6 }, () => inspect(centos))]);
    assert.equal(big.verdict, 'ok', line(big));
    assert.equal(big.os, 'Ubuntu 22.04.4 LTS');
    for (const r of others) {
      assert.equal(r.verdict, 'ok', line(r));
      assert.equal(r.os, 'CentOS release 5.11 (Final)');
    }
  });

  test('the reader still works afterwards (an abort of libext2fs would be for the life of the worker)', async () => {
    const r = await inspect(centos);
    assert.equal(r.verdict, 'ok', line(r));
    assert.equal(r.os, 'CentOS release 5.11 (Final)');
  });
});
