/**
 * The demo's example disks: real guests (an MBR, ext3/ext4 or NTFS, OS release files, a kernel) built with
 * sfdisk, mke2fs, mkntfs and qemu-img by dev/guest-images.ts, so the simulator judges them by content as EC2
 * would. `legacy-01` is CentOS 4.9 with kernel 2.6.9, older than anything VM Import's supported-OS list
 * names: EC2 (the simulator) cancels its conversion with "ClientError: Unsupported kernel version 2.6.9-…".
 * Everything else is a supported distribution and converts.
 *
 * The disks are kept in examples/images/ with a stamp of what they hold; a later demo with the same stamp
 * reuses them (building takes a few seconds and two CPU-bound tools per disk).
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GuestContainer, GuestSpec } from './guest-images';
import { GUESTS, makeGuestImage, windowsGuestsSupported } from './guest-images';
import { resolveDiskTools } from './tools';

/** Small disks keep the demo fast (it runs in CI): 32 MiB each, 4 MiB of it data the upload moves. */
const SIZE_MIB = 32;
const PAYLOAD_MIB = 4;
/** Bump when the way the disks are built changes, so cached ones are rebuilt. */
const BUILD_VERSION = 1;

type DemoGuest = 'ubuntu2204' | 'centos511' | 'centos4' | 'windows2019';

/** Every image examples/inventory.csv names: file, guest, container. */
export const DEMO_IMAGES: ReadonlyArray<readonly [file: string, guest: DemoGuest, container: GuestContainer]> = [
  ['web-01.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['web-02.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['api-01.raw', 'ubuntu2204', 'raw'],
  ['api-02.raw', 'ubuntu2204', 'raw'],
  ['win-app-01.vhd', 'windows2019', 'fixed-vhd'],
  ['legacy-01.raw', 'centos4', 'raw'],
  ['db-01.vhd', 'centos511', 'dynamic-vhd'],
  ['db-02.vhd', 'centos511', 'dynamic-vhd'],
  ['cache-01.raw', 'ubuntu2204', 'raw'],
  ['win-db-01.vhd', 'windows2019', 'fixed-vhd'],
  ['mq-01.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['batch-01.raw', 'centos511', 'raw'],
];

/** The VM that fails on purpose, and the start of EC2's message for it (the kernel release follows). */
export const EXPECTED_FAILURE = { vm: 'legacy-01', message: 'ClientError: Unsupported kernel version 2.6.9-' };

/** Windows types of the inventory and the Linux types (VM Import's Linux list) used when no Windows guest can be built. */
const LINUX_TYPE_FOR: Record<string, string> = { 'm5.large': 'm3.large', 'm5.xlarge': 'm3.xlarge' };

export interface DemoImages {
  /** The inventory to migrate: examples/inventory.csv, or its Linux-only variant (see `windows`). */
  inventory: string;
  /** False when this machine cannot build NTFS guests (no FUSE, no ntfs-3g/hivex): Linux guests stand in. */
  windows: boolean;
  /** False when the disks of an earlier demo were reused. */
  built: boolean;
}

/**
 * Builds (or reuses) the demo's disks under `imageDir` for the inventory at `inventory`. `windows: false`
 * builds Linux guests in place of the Windows ones, as on a machine without FUSE (tests of that path).
 */
export async function makeDemoImages(
  inventory: string,
  imageDir: string,
  opts: { windows?: boolean } = {}
): Promise<DemoImages> {
  const missing = await resolveDiskTools();
  for (const needed of ['sfdisk', 'debugfs'])
    if (missing.includes(needed))
      throw new Error(
        `${needed} is needed for the demo's guest disks and EC2's content checks: install fdisk and e2fsprogs`
      );
  const windows =
    opts.windows !== false &&
    !missing.some((t) => ['mkntfs', 'hivexget', 'hivexregedit'].includes(t)) &&
    (await windowsGuestsSupported());
  const guestFor = (name: DemoGuest): GuestSpec =>
    name === 'windows2019' && !windows ? GUESTS.ubuntu2204 : GUESTS[name];
  const stampFile = path.join(imageDir, '.demo-images.json');
  const stamp = JSON.stringify({
    BUILD_VERSION,
    SIZE_MIB,
    PAYLOAD_MIB,
    images: DEMO_IMAGES.map(([file, guest, container]) => [file, guestFor(guest), container]),
  });
  const cached =
    (await readFile(stampFile, 'utf8').catch(() => '')) === stamp &&
    (await Promise.all(DEMO_IMAGES.map(([file]) => exists(path.join(imageDir, file))))).every(Boolean);
  if (!cached) {
    await mkdir(imageDir, { recursive: true });
    await rm(stampFile, { force: true });
    await Promise.all(
      DEMO_IMAGES.map(([file, guest, container]) =>
        makeGuestImage(imageDir, file, guestFor(guest), container, { sizeMiB: SIZE_MIB, payloadMiB: PAYLOAD_MIB })
      )
    );
    await writeFile(stampFile, stamp);
  }
  if (windows) return { inventory, windows, built: !cached };
  const linuxOnly = path.join(imageDir, 'inventory-linux-only.csv');
  await writeFile(linuxOnly, linuxOnlyInventory(await readFile(inventory, 'utf8')));
  return { inventory: linuxOnly, windows, built: !cached };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false
  );
}

/**
 * The inventory with its Windows VMs turned into Linux ones (no platform, a Linux instance type), written
 * beside the disks: each `image` becomes its file name. The demo's CSV has no quoted fields.
 */
export function linuxOnlyInventory(csv: string): string {
  const [header, ...rows] = csv.trimEnd().split('\n');
  const columns = header!.split(',');
  const at = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`the demo inventory has no ${name} column`);
    return i;
  };
  const [image, platform, type] = [at('image'), at('platform'), at('instance_type')];
  const out = rows.map((row) => {
    if (row.includes('"')) throw new Error('the demo inventory must not quote fields');
    const cells = row.split(',');
    cells[image] = path.basename(cells[image]!);
    if (cells[platform] === 'Windows') {
      const linuxType = LINUX_TYPE_FOR[cells[type]!];
      if (!linuxType) throw new Error(`no Linux instance type to stand in for ${cells[type]}`);
      [cells[platform], cells[type]] = ['', linuxType];
    }
    return cells.join(',');
  });
  return [header, ...out].join('\n') + '\n';
}
