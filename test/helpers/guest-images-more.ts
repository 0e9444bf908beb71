/**
 * Guest disks of shapes guest-images.ts does not make: several partitions (a separate /boot, two systems),
 * a GPT label, any file tree (an fstab by device name, network mounts), no active flag, and large sparse
 * disks (a 100 GiB disk holding a 4 GiB root) for the inspection benchmark. Built with the same real tools:
 * sfdisk, mke2fs -d (straight into each partition through its offset), qemu-img for the container.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GuestContainer } from './guest-images';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

export interface PartitionSpec {
  sizeMiB: number;
  /** Files to write, path → contents; directories are created as needed. */
  files: Record<string, string>;
  /** Empty directories to create. */
  dirs?: string[];
  /** @default ext4 */
  fsType?: 'ext2' | 'ext3' | 'ext4';
  /** @default true for the first partition */
  active?: boolean;
}

export interface DiskSpec {
  /** @default 'dos' (MBR) */
  label?: 'dos' | 'gpt';
  /** Whole disk in MiB (sparse); at least 1 + the partitions. */
  sizeMiB: number;
  partitions: PartitionSpec[];
}

async function run(tool: string, args: string[], input?: string): Promise<void> {
  const child = execFileAsync(tool, args);
  if (input !== undefined) child.child.stdin?.end(input);
  await child;
}

/** A Linux root's files: os-release, fstab, a kernel in /boot and its modules, grub.cfg. */
export function linuxRoot(opts: { osRelease?: string; redhatRelease?: string; kernel: string; fstab?: string }): {
  files: Record<string, string>;
  dirs: string[];
} {
  const files: Record<string, string> = {
    'etc/fstab': opts.fstab ?? 'UUID=0a3407de-014b-458b-b5c1-848e92a327a3 / ext4 defaults 0 1\n',
    [`boot/vmlinuz-${opts.kernel}`]: 'kernel image stand-in\n',
    'boot/grub/grub.cfg': `menuentry 'Linux' {\n  linux /boot/vmlinuz-${opts.kernel} root=LABEL=root\n}\n`,
  };
  if (opts.osRelease) files['etc/os-release'] = opts.osRelease;
  if (opts.redhatRelease) files['etc/redhat-release'] = opts.redhatRelease;
  return { files, dirs: [`lib/modules/${opts.kernel}`] };
}

export const RHEL7_RELEASE =
  'NAME="Red Hat Enterprise Linux Server"\nVERSION="7.9 (Maipo)"\nID="rhel"\nVERSION_ID="7.9"\nPRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"\n';
export const UBUNTU2204_RELEASE = 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n';

/** Builds the disk as RAW in `dir`, then converts it when another container is asked for. */
export async function makeDisk(
  dir: string,
  name: string,
  spec: DiskSpec,
  container: GuestContainer = 'raw'
): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), 'vmconvoy-guest-more-'));
  try {
    const raw = path.join(container === 'raw' ? dir : work, container === 'raw' ? name : 'disk.raw');
    const handle = await open(raw, 'w');
    await handle.truncate(spec.sizeMiB * MiB);
    await handle.close();
    let start = 1;
    const lines = [`label: ${spec.label ?? 'dos'}`];
    const offsets: number[] = [];
    spec.partitions.forEach((p, i) => {
      const active = (p.active ?? i === 0) && spec.label !== 'gpt' ? ', bootable' : '';
      const type = spec.label === 'gpt' ? '0FC63DAF-8483-4772-8E79-3D69D8477DE4' : '83';
      lines.push(`start=${start * 2048}, size=${p.sizeMiB * 2048}, type=${type}${active}`);
      offsets.push(start * MiB);
      start += p.sizeMiB;
    });
    await run('sfdisk', ['-q', raw], `${lines.join('\n')}\n`);
    for (const [i, p] of spec.partitions.entries()) {
      const tree = path.join(work, `tree-${i}`);
      await mkdir(tree, { recursive: true });
      for (const d of p.dirs ?? []) await mkdir(path.join(tree, d), { recursive: true });
      for (const [file, text] of Object.entries(p.files)) {
        await mkdir(path.dirname(path.join(tree, file)), { recursive: true });
        await writeFile(path.join(tree, file), text);
      }
      const fsType = p.fsType ?? 'ext4';
      const args = ['-q', '-F', '-t', fsType, '-E', `offset=${offsets[i]}`, '-d', tree, raw, `${p.sizeMiB}M`];
      await run('mke2fs', args);
    }
    if (container === 'raw') return raw;
    const file = path.join(dir, name);
    const out: Record<Exclude<GuestContainer, 'raw'>, string[]> = {
      'stream-vmdk': ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
      'fixed-vhd': ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'],
      'dynamic-vhd': ['-O', 'vpc', '-o', 'force_size=on'],
    };
    await run(process.env.QEMU_IMG ?? 'qemu-img', ['convert', '-q', '-f', 'raw', ...out[container], raw, file]);
    return file;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The benchmark's disk: 100 GiB virtual (sparse), a 4 GiB ext4 root holding Ubuntu 22.04, in `container`. */
export async function makeLargeGuest(dir: string, name: string, container: GuestContainer): Promise<string> {
  const root = linuxRoot({ osRelease: UBUNTU2204_RELEASE, kernel: '5.15.0-91-generic' });
  return makeDisk(dir, name, { sizeMiB: 100 * 1024, partitions: [{ sizeMiB: 4096, ...root }] }, container);
}
