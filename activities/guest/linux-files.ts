/**
 * What an ext2/3/4 partition holds that VM Import looks at, read through libext2fs (balena's ext2fs,
 * WebAssembly) over the guest disk: the release files, /etc/fstab, the kernels in /boot and /lib/modules,
 * and the GRUB configuration. A separate /boot partition shows its kernels and grub at its top. The
 * contents stay inside the activity: only what the rules need leaves this module.
 */
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

export async function readLinuxFiles(disk: GuestFileDisk, offset: number): Promise<LinuxFiles> {
  return withMountedDisk(disk, offset, async ({ promises: fs }) => {
    const text = async (path: string): Promise<string | undefined> => {
      try {
        return (await fs.readFile(path)).toString('utf8');
      } catch {
        return undefined;
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
    const top = await list('/');
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
  });
}
