/**
 * The demo's example disks: real guests (an MBR, ext3/ext4 or NTFS, OS release files, a kernel) built with
 * sfdisk, mke2fs, mkntfs and qemu-img by dev/guest-images.ts, so vmconvoy's inspection and the simulator
 * judge them by content as VM Import would. `legacy-01` is CentOS 4.9 with kernel 2.6.9, older than anything
 * VM Import's supported-OS list names: `validate` refuses it before anything is uploaded. `batch-01` is
 * CentOS 7 with its listed kernel and a mainline 6.6 kernel as GRUB's default: inspection can only warn,
 * and EC2 (the simulator) cancels its conversion with "ClientError: Unsupported kernel version 6.6.8-…".
 * Everything else is a supported distribution and converts. `db-01` has a data disk (a partition without an
 * operating system, imported with ImportVolume and attached at /dev/sdf), and `files-01` arrives as vSphere
 * exports it: an OVA holding its boot disk and a data disk (dev/ova.ts packs it).
 *
 * Linux disks are 320 MiB (VM Import needs 250 MiB free on /). Windows disks are 6400 MiB, so that the
 * system volume has the 6 GiB free VM Import needs and is inspected like any other: the NTFS volume is a
 * sparse file formatted by `mkntfs --quick`, written into the disk by qemu-img (which skips the holes), and
 * kept as a dynamic VHD holding only the clusters in use (~46 MiB). Measured here: about 2 s to build, 0.1 s
 * to inspect; copying the volume byte by byte into a fixed VHD took 148 s.
 *
 * The disks are kept in examples/images/ with a stamp of what they hold; a later demo with the same stamp
 * reuses them (building takes a few seconds and two CPU-bound tools per disk).
 */
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GuestContainer, GuestSpec } from './guest-images';
import { GUESTS, makeGuestImage, windowsGuestsSupported } from './guest-images';
import { makeOva } from './ova';
import { resolveDiskTools } from './tools';

/** Small disks keep the demo fast (it runs in CI), 4 MiB of each data the upload moves. */
const LINUX_SIZE_MIB = 320;
const WINDOWS_SIZE_MIB = 6400;
const PAYLOAD_MIB = 4;
/** Bump when the way the disks are built changes, so cached ones are rebuilt. */
const BUILD_VERSION = 4;

type DemoGuest = 'ubuntu2204' | 'centos511' | 'centos4' | 'centos7Mainline' | 'windows2019' | 'empty';

/**
 * CentOS 7.9 with its listed 3.10.0 kernel and a mainline 6.6 kernel (ELRepo's kernel-ml) as GRUB's default:
 * VM Import boots the default and refuses it, while a look at the disk can only warn (a listed kernel is
 * there; which one boots is GRUB's saved choice).
 */
const CENTOS7_MAINLINE: GuestSpec = {
  kind: 'linux',
  osRelease: 'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n',
  kernel: '3.10.0-1160.el7.x86_64',
  extraKernels: ['6.6.8-1.el7.elrepo.x86_64'],
};

/** Every image examples/inventory.csv names: file, guest, container. */
export const DEMO_IMAGES: ReadonlyArray<readonly [file: string, guest: DemoGuest, container: GuestContainer]> = [
  ['web-01.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['web-02.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['api-01.raw', 'ubuntu2204', 'raw'],
  ['api-02.raw', 'ubuntu2204', 'raw'],
  ['win-app-01.vhd', 'windows2019', 'dynamic-vhd'],
  ['legacy-01.raw', 'centos4', 'raw'],
  ['db-01.vhd', 'centos511', 'dynamic-vhd'],
  ['db-02.vhd', 'centos511', 'dynamic-vhd'],
  ['cache-01.raw', 'ubuntu2204', 'raw'],
  ['win-db-01.vhd', 'windows2019', 'dynamic-vhd'],
  ['mq-01.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['batch-01.raw', 'centos7Mainline', 'raw'],
  // A data disk: a file system and no operating system (ImportVolume takes any disk).
  ['db-01-data.vhd', 'empty', 'dynamic-vhd'],
  // The OVA's disks, packed into files-01.ova (DEMO_OVAS) after they are built.
  ['files-01-disk1.vmdk', 'ubuntu2204', 'stream-vmdk'],
  ['files-01-disk2.vmdk', 'empty', 'stream-vmdk'],
];

/** The OVAs examples/inventory.csv names, and the disks of DEMO_IMAGES each holds in OVF order (boot first). */
export const DEMO_OVAS: ReadonlyArray<readonly [file: string, disks: readonly string[]]> = [
  ['files-01.ova', ['files-01-disk1.vmdk', 'files-01-disk2.vmdk']],
];

/** The VM that fails at AWS on purpose, and the start of EC2's message for it (the kernel release follows). */
export const EXPECTED_FAILURE = { vm: 'batch-01', message: 'ClientError: Unsupported kernel version 6.6.8-' };
/** The VM `validate` refuses on purpose (nothing uploaded), and what its refusal says. */
export const EXPECTED_REFUSAL = { vm: 'legacy-01', message: 'Unsupported kernel version 2.6.9-' };

/** Windows types of the inventory and the Linux types (VM Import's Linux list) used when no Windows guest can be built. */
const LINUX_TYPE_FOR: Record<string, string> = { 'm5.large': 'm3.large', 'm5.xlarge': 'm3.xlarge' };

export interface DemoImages {
  /** The inventory to migrate: examples/inventory.csv as the demo runs it (see demoInventory), or its Linux-only variant (see `windows`). */
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
    name === 'centos7Mainline'
      ? CENTOS7_MAINLINE
      : name === 'windows2019' && !windows
        ? GUESTS.ubuntu2204
        : GUESTS[name];
  const stampFile = path.join(imageDir, '.demo-images.json');
  const stamp = JSON.stringify({
    BUILD_VERSION,
    LINUX_SIZE_MIB,
    WINDOWS_SIZE_MIB,
    PAYLOAD_MIB,
    images: DEMO_IMAGES.map(([file, guest, container]) => [file, guestFor(guest), container]),
    ovas: DEMO_OVAS,
  });
  const files = [...DEMO_IMAGES.map(([file]) => file), ...DEMO_OVAS.map(([file]) => file)];
  const cached =
    (await readFile(stampFile, 'utf8').catch(() => '')) === stamp &&
    (await Promise.all(files.map((file) => exists(path.join(imageDir, file))))).every(Boolean);
  if (!cached) {
    await mkdir(imageDir, { recursive: true });
    await rm(stampFile, { force: true });
    await Promise.all(
      DEMO_IMAGES.map(([file, guest, container]) =>
        makeGuestImage(imageDir, file, guestFor(guest), container, {
          sizeMiB: guestFor(guest).kind === 'windows' ? WINDOWS_SIZE_MIB : LINUX_SIZE_MIB,
          payloadMiB: PAYLOAD_MIB,
        })
      )
    );
    for (const [file, disks] of DEMO_OVAS)
      await makeOva(imageDir, path.basename(file, '.ova'), {
        disks: disks.map((d) => path.join(imageDir, d)),
        vmwOsType: 'ubuntu64Guest',
        osDescription: 'Ubuntu Linux (64-bit)',
        cpus: 2,
        memoryMiB: 4096,
      });
    await writeFile(stampFile, stamp);
  }
  if (windows) {
    const demo = path.join(imageDir, 'inventory-demo.csv');
    await writeFile(demo, demoInventory(await readFile(inventory, 'utf8')));
    return { inventory: demo, windows, built: !cached };
  }
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

/** An `image` cell with its paths turned into file names (the disks sit beside the inventory the demo runs). */
function imageFileNames(cell: string): string {
  return cell
    .split(';')
    .map((p) => path.basename(p))
    .join(';');
}

/** The demo CSV's rows as cells, with a function that finds a column; images become their file names. */
function demoRows(csv: string): { header: string[]; rows: string[][]; at: (name: string) => number } {
  const [header, ...lines] = csv.trimEnd().split('\n');
  const columns = header!.split(',');
  const at = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`the demo inventory has no ${name} column`);
    return i;
  };
  const rows = lines.map((row) => {
    if (row.includes('"')) throw new Error('the demo inventory must not quote fields');
    const cells = row.split(',');
    cells[at('image')] = imageFileNames(cells[at('image')]!);
    return cells;
  });
  return { header: columns, rows, at };
}

/**
 * The inventory as the demo runs it, written beside the disks: each `image` becomes its file name. Every
 * row is inspected, the Windows ones included.
 */
export function demoInventory(csv: string): string {
  const { header, rows } = demoRows(csv);
  return [header.join(','), ...rows.map((cells) => cells.join(','))].join('\n') + '\n';
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
    cells[image] = imageFileNames(cells[image]!);
    if (cells[platform] === 'Windows') {
      const linuxType = LINUX_TYPE_FOR[cells[type]!];
      if (!linuxType) throw new Error(`no Linux instance type to stand in for ${cells[type]}`);
      [cells[platform], cells[type]] = ['', linuxType];
    }
    return cells.join(',');
  });
  return [header, ...out].join('\n') + '\n';
}
