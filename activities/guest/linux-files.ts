/**
 * What an ext2/3/4 partition holds that VM Import looks at, read through libext2fs (balena's ext2fs,
 * WebAssembly) over the guest disk: the release files, /etc/fstab, the kernels in /boot and /lib/modules,
 * and the GRUB configuration. A separate /boot partition shows its kernels and grub at its top. The
 * contents stay inside the activity: only what the rules need leaves this module.
 */
import type { Ext2Promises } from 'ext2fs';
import { withMountedDisk } from 'ext2fs';
import type { GuestFileDisk } from './file-disk';

export interface LinuxFiles {
  osRelease?: Record<string, string>;
  lsbRelease?: Record<string, string>;
  /** First line of /etc/redhat-release (CentOS, RHEL, Fedora, Oracle, Rocky write one). */
  redhatRelease?: string;
  suseRelease?: string;
  debianVersion?: string;
  hasEtc: boolean;
  /** /etc/fstab, when present (read for its device names; never returned to callers of inspectGuest). */
  fstab?: string;
  /** Releases of /boot/vmlinuz-<release> (or vmlinuz-<release> at the top of a /boot partition). */
  kernels: string[];
  /** Directories of /lib/modules (or /usr/lib/modules). */
  modules: string[];
  /** The GRUB configuration found, if any: `grub2` (grub.cfg) or `grub-legacy` (menu.lst / grub.conf). */
  grub?: 'grub2' | 'grub-legacy';
}

/** KEY=value lines (os-release, lsb-release), values optionally quoted. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

const GRUB2 = ['/boot/grub/grub.cfg', '/boot/grub2/grub.cfg', '/grub/grub.cfg', '/grub2/grub.cfg'];
const GRUB_LEGACY = ['/boot/grub/menu.lst', '/boot/grub/grub.conf', '/grub/menu.lst', '/grub/grub.conf'];

/**
 * What is read of any one file: release files and fstab are a few hundred bytes. A hostile image's 24 MiB
 * /etc/os-release, read whole, exhausted libext2fs's heap (below) and so every inspection after it.
 */
export const MAX_TEXT_BYTES = 64 * 1024;

/**
 * libext2fs runs in one WebAssembly instance per process with a fixed 16 MiB heap that cannot grow
 * (ext2fs 4.2.5's build: `_emscripten_resize_heap` aborts), shared by every file system mounted at once, and
 * an abort ("Aborted(OOM)") is for good: every later call in the process fails. Its JavaScript side also keeps
 * the current call's buffers in module globals (lib/util.js `hookId`) across awaits. A worker pre-flighting a
 * wave of VMs mounted several at once; under load the demo's guests then read as having no /etc and were
 * refused. So one file system is mounted at a time, per process: inspections still run in parallel up to
 * here (opening the image, the partition table, NTFS), and the ext part of each takes milliseconds.
 */
let ext2fsTurn: Promise<unknown> = Promise.resolve();
function oneMountAtATime<T>(work: () => Promise<T>): Promise<T> {
  const mine = ext2fsTurn.then(work, work);
  ext2fsTurn = mine.catch(() => undefined);
  return mine;
}

export async function readLinuxFiles(disk: GuestFileDisk, offset: number): Promise<LinuxFiles> {
  return oneMountAtATime(() => withMountedDisk(disk, offset, async ({ promises: fs }) => readMounted(fs)));
}

async function readMounted(fs: Ext2Promises): Promise<LinuxFiles> {
  const text = async (path: string): Promise<string | undefined> => {
    let fd: number | undefined;
    try {
      fd = (await fs.open(path, 'r')).fd;
      const buffer = Buffer.alloc(MAX_TEXT_BYTES);
      const { bytesRead } = await fs.read(fd, buffer, 0, MAX_TEXT_BYTES, 0);
      return buffer.subarray(0, bytesRead).toString('utf8');
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) await fs.close(fd).catch(() => undefined);
    }
  };
  const list = async (path: string): Promise<string[]> => {
    try {
      return await fs.readdir(path);
    } catch {
      return [];
    }
  };
  const exists = (path: string): Promise<boolean> =>
    fs.stat(path).then(
      (s) => s.isFile(),
      () => false
    );
  const firstLine = (t: string | undefined): string | undefined => t?.split('\n')[0]?.trim() || undefined;
  const osRelease = (await text('/etc/os-release')) ?? (await text('/usr/lib/os-release'));
  const lsb = await text('/etc/lsb-release');
  // The root directory of a mounted file system always lists: if it does not, the reader failed, and that
  // is no verdict on the guest (an empty list here read as "no /etc" and refused the VM).
  const top = await fs.readdir('/');
  const vmlinuz = (names: string[]): string[] =>
    names.map((n) => /^vmlinuz-(.+)$/.exec(n)?.[1]).filter((k): k is string => k !== undefined);
  let grub: LinuxFiles['grub'];
  for (const f of GRUB2) if (!grub && (await exists(f))) grub = 'grub2';
  for (const f of GRUB_LEGACY) if (!grub && (await exists(f))) grub = 'grub-legacy';
  const modules = await list('/lib/modules');
  return {
    osRelease: osRelease ? parseKeyValues(osRelease) : undefined,
    lsbRelease: lsb ? parseKeyValues(lsb) : undefined,
    redhatRelease: firstLine(await text('/etc/redhat-release')),
    suseRelease: firstLine(await text('/etc/SuSE-release')),
    debianVersion: firstLine(await text('/etc/debian_version')),
    hasEtc: top.includes('etc'),
    fstab: await text('/etc/fstab'),
    kernels: [...new Set([...vmlinuz(await list('/boot')), ...vmlinuz(top)])],
    modules: modules.length > 0 ? modules : await list('/usr/lib/modules'),
    grub,
  };
}
