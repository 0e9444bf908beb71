/**
 * The simulator's content judge on disks built with real tools (sfdisk, mke2fs -d, mkntfs + ntfs-3g,
 * hivexregedit, qemu-img; test/helpers/guest-images.ts): a supported distribution passes, an old kernel,
 * a disk without a partition table, a partition without an OS and an unsupported Windows fail with
 * EC2's messages. Plus the pieces: MBR parsing of random bytes, the kernel and Windows lists.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MESSAGES, judgeDisk } from '../../sim/judge/judge';
import { rawDisk } from '../../sim/judge/raw-disk';
import { kernelSupported, windowsSupported } from '../../sim/judge/supported-os';
import type { GuestContainer, GuestSpec } from '../helpers/guest-images';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';

let dir: string;
let seq = 0;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sim-judge-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds the guest in `container`, turns it back into a raw disk as the simulator does, and judges it. */
async function judge(guest: GuestSpec, container: GuestContainer = 'raw') {
  const name = `g${++seq}`;
  const image = await makeGuestImage(dir, `${name}.img`, guest, container);
  const format = container === 'raw' ? 'RAW' : container === 'stream-vmdk' ? 'VMDK' : 'VHD';
  const raw = await rawDisk(format, image, path.join(dir, `${name}.raw`));
  assert.ok('file' in raw, JSON.stringify(raw));
  const scratch = await mkdtemp(path.join(dir, 'scratch-'));
  return judgeDisk(raw.file, scratch);
}

describe('Linux guests', () => {
  test('a supported Ubuntu 22.04 tree (kernel 5.15.0) passes, in every container, and is found to be Linux', async () => {
    for (const container of ['raw', 'stream-vmdk', 'fixed-vhd', 'dynamic-vhd'] as const) {
      const j = await judge(GUESTS.ubuntu2204, container);
      assert.equal(j.failure, undefined, `${container}: ${j.judged}`);
      assert.equal(j.platform, 'linux');
      assert.match(j.judged, /Ubuntu 22\.04\.4 LTS \(ubuntu\), kernel 5\.15\.0-91-generic on partition 1 \(ext\)/);
    }
  });

  test('CentOS 4.9 with kernel 2.6.9 (older than anything on the list) fails with the kernel message', async () => {
    const j = await judge(GUESTS.centos4, 'stream-vmdk');
    assert.deepEqual(j.failure, { at: 0.5, message: 'ClientError: Unsupported kernel version 2.6.9-103.EL' });
    assert.match(j.judged, /CentOS release 4\.9 \(Final\) \(centos\)/);
  });

  test('CentOS 5.11 with kernel 2.6.18 (listed for CentOS 5.1-5.11) passes', async () => {
    const j = await judge(GUESTS.centos511);
    assert.equal(j.failure, undefined, j.judged);
    assert.equal(j.platform, 'linux');
  });

  test('a file system over the whole disk (no partition table) fails with "No valid partitions"', async () => {
    const j = await judge(GUESTS.unpartitioned);
    assert.deepEqual(j.failure, { at: 0.1, message: MESSAGES.noPartitions });
    assert.equal(MESSAGES.noPartitions, 'ClientError: No valid partitions. Not a valid volume.');
  });

  test('a partition with a file system but no OS files fails with "Unknown OS / Missing OS files"', async () => {
    const j = await judge(GUESTS.empty);
    assert.equal(j.failure?.message, 'ClientError: Unknown OS / Missing OS files');
  });

  test('no /etc/fstab, and no kernel in /boot, fail with their own messages', async () => {
    const noFstab = await judge({ ...GUESTS.ubuntu2204, fstab: false });
    assert.equal(noFstab.failure?.message, 'ClientError: Invalid configuration - Could not read fstab');
    const noKernel = await judge({ ...GUESTS.ubuntu2204, kernel: undefined });
    assert.equal(noKernel.failure?.message, 'ClientError: Unable to determine kernel version.');
  });

  test('Ubuntu 22.04 with a kernel the list does not name for Ubuntu fails', async () => {
    const j = await judge({ ...GUESTS.ubuntu2204, kernel: '6.2.0-39-generic' });
    assert.equal(j.failure?.message, 'ClientError: Unsupported kernel version 6.2.0-39-generic');
  });
});

describe('disks that are not guests', () => {
  test('random bytes, even behind an MBR signature, have no valid partitions (they used to become Windows instances)', async () => {
    const file = path.join(dir, 'random.raw');
    const bytes = randomBytes(4 * 1024 * 1024);
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    await writeFile(file, bytes);
    const j = await judgeDisk(file, dir);
    assert.deepEqual(j.failure, { at: 0.1, message: MESSAGES.noPartitions });
    assert.equal(j.platform, undefined);
  });

  test('random bytes whose MBR entry happens to be type EE (1 run in 60 of the test above) are not a GPT without its header', async () => {
    const file = path.join(dir, 'random-ee.raw');
    const bytes = randomBytes(4 * 1024 * 1024);
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    bytes[446 + 4] = 0xee;
    bytes[512] = 0; // never "EFI PART" by chance
    await writeFile(file, bytes);
    const j = await judgeDisk(file, dir);
    assert.deepEqual(j.failure, { at: 0.1, message: MESSAGES.noPartitions });
  });

  test('a GPT disk (protective MBR) has no bootable partition for ImportInstance', async () => {
    const file = path.join(dir, 'gpt.raw');
    await writeFile(file, Buffer.alloc(8 * 1024 * 1024));
    const { execFileSync } = await import('node:child_process');
    execFileSync('sfdisk', ['-q', file], { input: 'label: gpt\nstart=2048, type=L\n' });
    const j = await judgeDisk(file, dir);
    assert.deepEqual(j.failure, { at: 0.1, message: 'Client.Unsupported: No bootable partition found.' });
  });
});

describe('Windows guests', () => {
  // npm test provisions ntfs-3g and hivex (scripts/run-tests.ts): a machine that cannot build the disk fails here.

  test('Windows Server 2019 with its SOFTWARE hive passes and is found to be Windows', async () => {
    const j = await judge(GUESTS.windows2019, 'dynamic-vhd');
    assert.equal(j.failure, undefined, j.judged);
    assert.equal(j.platform, 'windows');
    assert.match(j.judged, /Windows Server 2019 Datacenter on partition 1 \(ntfs\)/);
  });

  test('Windows XP fails with "Unsupported Windows OS"', async () => {
    const j = await judge(GUESTS.windowsXp);
    assert.deepEqual(j.failure, { at: 0.5, message: 'ClientError: Unsupported Windows OS' });
    assert.match(j.judged, /Microsoft Windows XP Service Pack 3/);
  });

  test('System32 without a SOFTWARE hive is missing OS files; without an active partition nothing boots', async () => {
    assert.equal((await judge({ kind: 'windows' })).failure?.message, 'ClientError: Unknown OS / Missing OS files');
    assert.equal(
      (await judge({ ...GUESTS.windows2019, active: false })).failure?.message,
      'Client.Unsupported: No bootable partition found.'
    );
  });
});

describe('the support lists', () => {
  test('kernels match a listed series at a boundary, per distribution', () => {
    assert.equal(kernelSupported('centos', '2.6.18-398.el5'), true);
    assert.equal(kernelSupported('centos', '2.6.9-103.EL'), false);
    assert.equal(kernelSupported('ubuntu', '3.11.0-15-generic'), true);
    assert.equal(kernelSupported('ubuntu', '3.1.10-1-generic'), false, '3.1 is not 3.11');
    assert.equal(kernelSupported('rhel', '2.6.32-71.el6.x86_64'), false, 'the guide excludes 2.6.32-71');
    assert.equal(kernelSupported('rhel', '2.6.32-754.el6.x86_64'), true);
    assert.equal(kernelSupported('ol', '2.6.32-400.37.15.el5uek'), true);
    assert.equal(kernelSupported('photon', '5.10.83-4.ph4-aws'), false, 'a distribution the list does not name');
  });

  test('Windows versions: servers 2003 SP1 to 2025, clients 7 to 11; not XP, Vista, Server 2003 without a service pack, Nano', () => {
    const ok = (productName: string, extra = {}) => windowsSupported({ productName, ...extra });
    assert.equal(ok('Windows Server 2019 Datacenter'), true);
    assert.equal(ok('Windows Server (R) 2008 Standard'), true);
    assert.equal(ok('Windows Server 2012 R2 Standard'), true);
    assert.equal(ok('Windows 10 Pro'), true);
    assert.equal(ok('Windows 7 Professional'), true);
    assert.equal(ok('Microsoft Windows Server 2003', { servicePack: 'Service Pack 2' }), true);
    assert.equal(ok('Microsoft Windows Server 2003'), false);
    assert.equal(ok('Microsoft Windows XP', { servicePack: 'Service Pack 3' }), false);
    assert.equal(ok('Windows Vista (TM) Business'), false);
    assert.equal(ok('Windows Server 2016 Datacenter', { installationType: 'Nano Server' }), false);
    assert.equal(ok('Windows Server Datacenter', { releaseId: '1709' }), true);
  });
});
