/**
 * A look inside the guest, the way VM Import will look: partition table, file systems, the operating
 * system and its kernel, free space, boot loader and fstab, judged by VM Import's rules
 * (common/vm-import-rules.ts). Reads through the image's container only the blocks it needs. The result
 * names what was found and why, and holds no file contents: it goes into workflow histories.
 */
import { MAX_BOOT_VOLUME_BYTES, MIN_FREE_BYTES } from '../../common/vm-import-rules';
import type { GuestDisk } from './disk-reader';
import { GuestFileDisk } from './file-disk';
import type { FileSystemInfo } from './filesystems';
import { LINUX_FILE_SYSTEMS, identifyFileSystem } from './filesystems';
import type { LinuxFiles } from './linux-files';
import { readLinuxFiles } from './linux-files';
import { distributionOf, linuxReasons } from './linux-guest';
import type { GuestFileFormat } from './open-disk';
import { openGuestDisk } from './open-disk';
import type { Partition } from './partitions';
import { readPartitionTable } from './partitions';
import type { GuestReason, Verdict } from './reasons';
import { mib, verdictOf } from './reasons';
import type { WindowsSystem } from './windows-guest';
import { effectiveProductName, readWindowsSystem, windowsReasons } from './windows-guest';

export interface GuestInspection {
  verdict: Verdict;
  reasons: GuestReason[];
  /** e.g. `Ubuntu 22.04.4 LTS`, `Windows Server 2019 Datacenter (10.0 build 17763)`. */
  os?: string;
  /** The kernel(s) found, comma-separated (Linux). */
  kernel?: string;
  /** The system volume's file system. */
  fileSystem?: string;
  /** Free bytes on the system volume. */
  freeBytes?: number;
  partitionTable: 'mbr' | 'gpt' | 'none';
  /** The container as read, e.g. `stream-optimized VMDK`. */
  container: string;
  /** Bytes read from the image file. */
  bytesRead: number;
}

export interface InspectGuestOptions {
  imageRoots?: readonly string[];
  /** The row's platform: a guest of the other kind is refused. */
  platform?: 'Windows' | 'Linux';
}

interface Found {
  partition: Partition;
  fs: FileSystemInfo;
  linux?: LinuxFiles;
  windows?: WindowsSystem;
}

const refuse = (rule: string, message: string, fix: string): GuestReason => ({
  rule,
  severity: 'refuse',
  message,
  fix,
});
const warn = (rule: string, message: string, fix: string): GuestReason => ({ rule, severity: 'warn', message, fix });

export async function inspectGuest(
  file: string,
  format?: GuestFileFormat,
  opts: InspectGuestOptions = {}
): Promise<GuestInspection> {
  const { disk, handle } = await openGuestDisk(file, format, opts.imageRoots ?? []);
  try {
    const result = await inspectDisk(disk, opts);
    return { ...result, container: disk.kind, bytesRead: disk.bytesRead };
  } finally {
    await handle.close();
  }
}

export async function inspectDisk(
  disk: GuestDisk,
  opts: InspectGuestOptions = {}
): Promise<Omit<GuestInspection, 'container' | 'bytesRead'>> {
  const reasons: GuestReason[] = [];
  if (disk.virtualBytes > MAX_BOOT_VOLUME_BYTES)
    reasons.push(
      refuse(
        'boot-volume-2tib',
        `The disk is ${mib(disk.virtualBytes)}; an MBR boot disk holds at most 2 TiB.`,
        'Shrink the boot disk below 2 TiB; move data to another volume.'
      )
    );
  const fileDisk = new GuestFileDisk(disk);
  const table = await readPartitionTable(disk, fileDisk);
  const done = (
    extra: Partial<GuestInspection>,
    table: GuestInspection['partitionTable']
  ): Omit<GuestInspection, 'container' | 'bytesRead'> => ({
    verdict: verdictOf(reasons),
    reasons,
    partitionTable: table,
    ...extra,
  });
  if (table.kind === 'gpt') {
    reasons.push(
      refuse(
        'mbr-required',
        'The disk has a GPT partition table; ImportInstance boots only MBR disks (EC2 would fail with "No bootable partition found").',
        'Convert the disk to MBR inside the VM (e.g. `sgdisk --gpttombr`, with a BIOS GRUB install) and export it again, or import it with ImportImage, which takes GPT/UEFI.'
      )
    );
    return done({}, 'gpt');
  }
  if (table.kind === 'none' || table.partitions.length === 0) {
    const why = table.kind === 'none' ? table.why : 'the MBR lists no partition';
    reasons.push(
      refuse(
        'partition-table',
        `No valid partition table: ${why} (EC2 would fail with "No valid partitions. Not a valid volume.").`,
        'Export the whole disk (with its MBR) rather than a single partition, or partition it with an MBR before exporting.'
      )
    );
    return done({ fileSystem: table.kind === 'none' ? table.wholeDisk?.type : undefined }, 'none');
  }
  const found: Found[] = [];
  const unread: string[] = [];
  for (const partition of table.partitions) {
    const fs = await identifyFileSystem(disk, partition.offset);
    if (!fs) continue;
    const entry: Found = { partition, fs };
    try {
      if (fs.type === 'ext2' || fs.type === 'ext3' || fs.type === 'ext4')
        entry.linux = await readLinuxFiles(fileDisk, partition.offset);
      else if (fs.type === 'ntfs') entry.windows = await readWindowsSystem(disk, partition.offset);
      else if (LINUX_FILE_SYSTEMS.includes(fs.type) || fs.type === 'lvm2')
        unread.push(`${fs.type} on partition ${partition.index}`);
    } catch (err) {
      // A file system the readers cannot follow (damage, a feature they do not know) is not a verdict on
      // the guest: say so and let the operator judge, rather than fail the VM on the reader's limits.
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      unread.push(`${fs.type} on partition ${partition.index} could not be read (${why})`);
    }
    found.push(entry);
  }
  const roots = found.filter((f) => f.linux?.hasEtc || f.windows);
  if (roots.length > 1) {
    reasons.push(
      refuse(
        'multi-boot',
        `The disk holds ${roots.length} operating systems (partitions ${roots.map((r) => r.partition.index).join(', ')}); VM Import fails on multi-boot disks ("Multiple directories found").`,
        "Import a disk with one operating system: remove the other system's partition or its /etc before exporting."
      )
    );
    return done({}, 'mbr');
  }
  const root = roots[0];
  if (!root) {
    if (unread.length > 0) {
      reasons.push(
        warn(
          'not-inspected',
          `The system volume could not be inspected (${unread.join('; ')}; only ext2/3/4 and NTFS are read inside).`,
          "Check by hand that the distribution, kernel, GRUB, fstab and free space meet VM Import's requirements."
        )
      );
      return done({ fileSystem: [...new Set(found.map((f) => f.fs.type))].join(', ') }, 'mbr');
    }
    reasons.push(
      refuse(
        'os-not-found',
        'No operating system found on the disk (no /etc, no \\Windows): EC2 would fail with "Unknown OS / Missing OS files".',
        "Check that the image is the VM's system disk."
      )
    );
    return done({}, 'mbr');
  }
  const anyActive = table.partitions.some((p) => p.active);
  if (root.windows) {
    if (opts.platform === 'Linux')
      reasons.push(
        refuse(
          'platform',
          'The disk holds Windows but the row is a Linux import.',
          'Set platform to Windows for this row.'
        )
      );
    reasons.push(...windowsReasons(root.windows, root.partition.active));
    const product = effectiveProductName(root.windows);
    const os = product ? `${product}${root.windows.version ? ` (${root.windows.version})` : ''}` : 'Windows';
    return done({ os, fileSystem: 'ntfs', freeBytes: root.windows.freeBytes }, 'mbr');
  }
  const linux = root.linux!;
  if (opts.platform === 'Windows')
    reasons.push(
      refuse(
        'platform',
        'The disk holds Linux but the row is a Windows import.',
        'Leave platform empty for a Linux row.'
      )
    );
  const boot = found.find(
    (f) => f !== root && f.linux && !f.linux.hasEtc && (f.linux.kernels.length > 0 || f.linux.grub)
  )?.linux;
  const distro = distributionOf(linux);
  reasons.push(...linuxReasons(linux, boot, distro));
  const free = root.fs.freeBytes;
  if (free !== undefined && free < MIN_FREE_BYTES.linux)
    reasons.push(
      refuse(
        'free-space',
        `The root file system has ${mib(free)} free; VM Import needs at least 250 MiB to install drivers.`,
        'Free space on / (or grow the file system) so that at least 250 MiB are free.'
      )
    );
  if (!anyActive)
    reasons.push(
      warn(
        'bootable-partition',
        'No partition is marked active (bootable) in the MBR; some boot loaders need it.',
        'Mark the boot partition active (e.g. `sfdisk --activate /dev/sda 1`) before exporting.'
      )
    );
  const kernels = [...new Set([...linux.kernels, ...(boot?.kernels ?? [])])];
  return done(
    { os: distro?.name, kernel: kernels.join(', ') || undefined, fileSystem: root.fs.type, freeBytes: free },
    'mbr'
  );
}
