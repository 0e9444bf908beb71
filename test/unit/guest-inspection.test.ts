/**
 * Guest inspection (activities/guest) on disks built with real tools (sfdisk, mke2fs -d, mkntfs + ntfs-3g,
 * hivexregedit, qemu-img: test/helpers/guest-images.ts and guest-images-more.ts), through each container
 * VM Import takes: the random-access readers return the RAW disk's bytes, and each guest gets the verdict
 * VM Import's rules give it. Also: a 100 GiB disk is inspected by reading at most 64 MiB of it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { identifyFileSystem } from '../../activities/guest/filesystems';
import { inspectGuest } from '../../activities/guest/inspect-guest';
import { distributionOf, fstabFindings } from '../../activities/guest/linux-guest';
import { openGuestDisk } from '../../activities/guest/open-disk';
import type { GuestContainer, GuestSpec } from '../helpers/guest-images';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import type { DiskSpec } from '../helpers/guest-images-more';
import { RHEL7_RELEASE, UBUNTU2204_RELEASE, linuxRoot, makeDisk, makeLargeGuest } from '../helpers/guest-images-more';

const MiB = 1024 * 1024;
/** The containers every verdict is checked through (fixed VHD is the RAW disk plus a footer: once, below). */
const CONTAINERS: GuestContainer[] = ['raw', 'stream-vmdk', 'dynamic-vhd'];
/** Big enough for VM Import's 250 MiB of free space. */
const ROOMY = 320;

let dir: string;
let seq = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'guest-inspection-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const guest = async (spec: GuestSpec, container: GuestContainer, sizeMiB = ROOMY) =>
  inspectGuest(await makeGuestImage(dir, `g${++seq}`, spec, container, { sizeMiB }));
const disk = async (spec: DiskSpec, container: GuestContainer) =>
  inspectGuest(await makeDisk(dir, `d${++seq}`, spec, container));
const rules = (r: { reasons: { rule: string }[] }): string[] => r.reasons.map((x) => x.rule);

describe('the random-access readers', () => {
  test('every container reads back the RAW disk byte for byte, at random offsets and across block edges', async () => {
    const raw = await makeGuestImage(dir, 'ref.raw', GUESTS.ubuntu2204, 'raw', { payloadMiB: 3 });
    const reference = await readFile(raw);
    for (const container of ['stream-vmdk', 'dynamic-vhd', 'fixed-vhd'] as const) {
      const file = await makeGuestImage(dir, `ref-${container}`, GUESTS.ubuntu2204, container, { payloadMiB: 3 });
      const { disk: d, handle } = await openGuestDisk(file);
      try {
        assert.equal(d.virtualBytes, reference.length, container);
        const probes = [0, 510, 64 * 1024 - 7, 2 * MiB - 100, reference.length - 300];
        for (let i = 0; i < 40; i++) probes.push(randomInt(reference.length - 70_000));
        for (const at of probes) {
          const length = Math.min(70_000, reference.length - at);
          assert.ok((await d.read(at, length)).equals(reference.subarray(at, at + length)), `${container} at ${at}`);
        }
        // Past the end reads as zeros rather than failing.
        assert.ok((await d.read(reference.length - 10, 20)).subarray(10).equals(Buffer.alloc(10)));
      } finally {
        await handle.close();
      }
    }
  });

  test('a file whose bytes are not the declared container is refused', async () => {
    const raw = await makeGuestImage(dir, 'decl.raw', GUESTS.ubuntu2204, 'raw');
    await assert.rejects(inspectGuest(raw, 'VMDK'), /declared as VMDK but its bytes are those of a RAW image/);
  });
});

describe('Linux guests', () => {
  for (const container of CONTAINERS) {
    test(`${container}: a supported Ubuntu 22.04 (5.15.0) is ok, with what was found and no file contents`, async () => {
      const r = await guest(GUESTS.ubuntu2204, container);
      assert.equal(r.verdict, 'ok', JSON.stringify(r.reasons));
      assert.equal(r.os, 'Ubuntu 22.04.4 LTS');
      assert.equal(r.kernel, '5.15.0-91-generic');
      assert.equal(r.fileSystem, 'ext4');
      assert.equal(r.partitionTable, 'mbr');
      assert.ok(r.freeBytes! > 250 * MiB && r.freeBytes! < ROOMY * MiB, String(r.freeBytes));
      assert.ok(r.bytesRead > 0 && r.bytesRead < 2 * MiB, String(r.bytesRead));
      assert.doesNotMatch(JSON.stringify(r), /LABEL=root|menuentry|ID_LIKE/);
    });

    test(`${container}: RHEL 7.9 (3.10.0) is ok`, async () => {
      const root = linuxRoot({ osRelease: RHEL7_RELEASE, kernel: '3.10.0-1160.el7.x86_64' });
      const r = await disk({ sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...root }] }, container);
      assert.equal(r.verdict, 'ok', JSON.stringify(r.reasons));
      assert.equal(r.os, 'Red Hat Enterprise Linux Server 7.9 (Maipo)');
    });

    test(`${container}: CentOS 5.11 with 2.6.18 is ok (AWS lists it)`, async () => {
      const r = await guest(GUESTS.centos511, container);
      assert.equal(r.verdict, 'ok', JSON.stringify(r.reasons));
      assert.equal(r.os, 'CentOS release 5.11 (Final)');
      assert.equal(r.fileSystem, 'ext3');
    });

    test(`${container}: CentOS 4 with 2.6.9 is refused, naming the kernel`, async () => {
      const r = await guest(GUESTS.centos4, container);
      assert.equal(r.verdict, 'refuse');
      const kernel = r.reasons.find((x) => x.rule === 'linux-kernel');
      assert.equal(kernel?.severity, 'refuse');
      assert.match(kernel.message, /Unsupported kernel version 2\.6\.9-103\.EL.*2\.6\.18/);
      assert.match(kernel.fix, /kernel/);
    });

    test(`${container}: a disk with no partition table is refused`, async () => {
      const r = await guest(GUESTS.unpartitioned, container);
      assert.equal(r.verdict, 'refuse');
      assert.deepEqual(rules(r), ['partition-table']);
      assert.equal(r.partitionTable, 'none');
      assert.equal(r.fileSystem, 'ext4');
    });

    test(`${container}: a GPT disk is refused with what to do`, async () => {
      const root = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic' });
      const r = await disk({ label: 'gpt', sizeMiB: 66, partitions: [{ sizeMiB: 64, ...root }] }, container);
      assert.equal(r.verdict, 'refuse');
      assert.deepEqual(rules(r), ['mbr-required']);
      assert.match(r.reasons[0]!.fix, /MBR|ImportImage/);
    });

    test(`${container}: a root file system with too little free space is refused`, async () => {
      const r = await guest(GUESTS.ubuntu2204, container, 64);
      assert.equal(r.verdict, 'refuse');
      assert.deepEqual(rules(r), ['free-space']);
      assert.ok(r.freeBytes! < 250 * MiB);
    });

    test(`${container}: an fstab that mounts by device name is a warning`, async () => {
      const fstab = '/dev/sda1 / ext4 defaults 0 1\nUUID=0b1c /data xfs defaults 0 2\n';
      const root = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic', fstab });
      const r = await disk({ sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...root }] }, container);
      assert.equal(r.verdict, 'warn', JSON.stringify(r.reasons));
      assert.deepEqual(rules(r), ['fstab-device-names']);
      assert.match(r.reasons[0]!.message, /\/dev\/sda1 on \//);
      assert.match(r.reasons[0]!.fix, /UUID=/);
    });
  }

  test('network mounts in fstab are a warning', async () => {
    const fstab = 'LABEL=root / ext4 defaults 0 1\nnas:/export /srv nfs defaults 0 0\n';
    const root = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic', fstab });
    const r = await disk({ sizeMiB: ROOMY + 1, partitions: [{ sizeMiB: ROOMY, ...root }] }, 'raw');
    assert.deepEqual(rules(r), ['fstab-network-mounts']);
    assert.equal(r.verdict, 'warn');
  });

  test('kernels on a separate /boot partition are found; no active partition is a warning', async () => {
    const root = linuxRoot({ osRelease: RHEL7_RELEASE, kernel: '3.10.0-1160.el7.x86_64' });
    const rootFiles = Object.fromEntries(Object.entries(root.files).filter(([f]) => !f.startsWith('boot/')));
    const bootFiles = Object.fromEntries(
      Object.entries(root.files)
        .filter(([f]) => f.startsWith('boot/'))
        .map(([f, t]) => [f.slice('boot/'.length), t])
    );
    const spec: DiskSpec = {
      sizeMiB: 8 + ROOMY + 2,
      partitions: [
        { sizeMiB: 8, files: bootFiles, fsType: 'ext2', active: false },
        { sizeMiB: ROOMY, files: rootFiles, dirs: root.dirs },
      ],
    };
    const r = await disk(spec, 'dynamic-vhd');
    assert.equal(r.kernel, '3.10.0-1160.el7.x86_64');
    assert.deepEqual(rules(r), ['bootable-partition']);
    assert.equal(r.verdict, 'warn');
  });

  test('two systems on one disk (multi-boot) are refused', async () => {
    const a = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic' });
    const b = linuxRoot({ osRelease: RHEL7_RELEASE, kernel: '3.10.0-1160.el7.x86_64' });
    const r = await disk(
      {
        sizeMiB: 130,
        partitions: [
          { sizeMiB: 64, ...a },
          { sizeMiB: 64, ...b },
        ],
      },
      'raw'
    );
    assert.equal(r.verdict, 'refuse');
    assert.deepEqual(rules(r), ['multi-boot']);
  });

  test('a partition without an operating system, and a Linux guest on a Windows row, are refused', async () => {
    assert.deepEqual(rules(await guest(GUESTS.empty, 'raw')), ['linux-distribution']);
    const file = await makeGuestImage(dir, 'platform.raw', GUESTS.ubuntu2204, 'raw', { sizeMiB: ROOMY });
    assert.deepEqual(rules(await inspectGuest(file, 'RAW', { platform: 'Windows' })), ['platform']);
  });

  test('the distribution from the older release files, and fstab lines', () => {
    const base = { hasEtc: true, kernels: [], modules: [] };
    assert.deepEqual(distributionOf({ ...base, lsbRelease: { DISTRIB_ID: 'Ubuntu', DISTRIB_RELEASE: '14.04' } }), {
      id: 'ubuntu',
      name: 'Ubuntu',
      version: '14.04',
    });
    assert.equal(distributionOf({ ...base, debianVersion: '7.8' })?.version, '7.8');
    assert.equal(
      distributionOf({ ...base, redhatRelease: 'Red Hat Enterprise Linux Server release 6.10 (Santiago)' })?.id,
      'rhel'
    );
    assert.equal(distributionOf(base), undefined);
    const f = fstabFindings(
      '# /dev/sdb1 commented\n/dev/xvda1 / ext4 0 1\n/dev/mapper/vg-root / xfs 0 0\n//srv/share /mnt cifs 0 0\n'
    );
    assert.deepEqual(f, { byDevice: ['/dev/xvda1 on /'], network: ['/mnt'] });
  });
});

test('an XFS root is identified with its free space and reported as not inspected inside (a warning)', async () => {
  // An MBR made by sfdisk and an XFS superblock (xfs_format.h: magic, block size, blocks, free blocks).
  const file = path.join(dir, 'xfs.raw');
  const handle = await open(file, 'w');
  await handle.truncate(66 * MiB);
  await handle.close();
  const sfdisk = promisify(execFile)('sfdisk', ['-q', file]);
  sfdisk.child.stdin?.end('label: dos\nstart=2048, type=83, bootable\n');
  await sfdisk;
  const sb = Buffer.alloc(512);
  sb.write('XFSB', 0, 'latin1');
  sb.writeUInt32BE(4096, 4);
  sb.writeBigUInt64BE(16384n, 8);
  sb.writeBigUInt64BE(12000n, 144);
  const w = await open(file, 'r+');
  await w.write(sb, 0, 512, MiB);
  await w.close();
  const { disk: d, handle: h } = await openGuestDisk(file);
  assert.deepEqual(await identifyFileSystem(d, MiB), { type: 'xfs', sizeBytes: 16384 * 4096, freeBytes: 12000 * 4096 });
  await h.close();
  const r = await inspectGuest(file);
  assert.deepEqual(rules(r), ['not-inspected']);
  assert.equal(r.verdict, 'warn');
  assert.equal(r.fileSystem, 'xfs');
});

describe('Windows guests', () => {
  for (const container of CONTAINERS) {
    test(`${container}: Windows Server 2019 on an NTFS volume with too little free space is refused`, async () => {
      const r = await guest(GUESTS.windows2019, container, 64);
      assert.equal(r.verdict, 'refuse');
      assert.deepEqual(rules(r), ['free-space']);
      assert.match(r.reasons[0]!.message, /6 GiB/);
      assert.equal(r.os, 'Windows Server 2019 Datacenter');
      assert.equal(r.fileSystem, 'ntfs');
      assert.ok(r.freeBytes! > 10 * MiB && r.freeBytes! < 64 * MiB, String(r.freeBytes));
    });
  }

  test('Windows XP is refused by version; an inactive Windows partition is refused', async () => {
    const xp = await guest(GUESTS.windowsXp, 'raw', 64);
    assert.ok(rules(xp).includes('windows-version'));
    assert.match(xp.reasons.find((x) => x.rule === 'windows-version')!.message, /Windows XP/);
    const inactive = await guest({ ...GUESTS.windows2019, active: false }, 'raw', 64);
    assert.ok(rules(inactive).includes('bootable-partition'));
  });
});

describe('performance', () => {
  for (const container of ['stream-vmdk', 'dynamic-vhd'] as const) {
    test(`${container}: a 100 GiB disk with a 4 GiB ext4 root is judged reading at most 64 MiB`, async () => {
      const file = await makeLargeGuest(dir, `large-${container}`, container);
      const r = await inspectGuest(file);
      assert.equal(r.verdict, 'ok', JSON.stringify(r.reasons));
      assert.ok(r.bytesRead <= 64 * MiB, `${r.bytesRead} bytes read`);
      const handle = await open(file, 'r');
      const size = (await handle.stat()).size;
      await handle.close();
      assert.ok(size < 200 * MiB, `the sparse image is ${size} bytes`);
    });
  }
});
