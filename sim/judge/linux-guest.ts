/**
 * What an ext2/3/4 partition holds, read with e2fsprogs' debugfs straight from the raw disk (the
 * `file?offset=N` form of its device name: no loop device, no mount): the files that name the
 * distribution, /etc/fstab, and the kernels in /boot (or at the top of a separate /boot partition).
 */
import { runTool } from './tools';

export interface LinuxFiles {
  /** /etc/os-release (or /usr/lib/os-release) as key → value. */
  osRelease?: Record<string, string>;
  /** The first line of /etc/redhat-release, /etc/SuSE-release or /etc/debian_version, with the file it came from. */
  release?: { file: string; text: string };
  hasEtc: boolean;
  hasFstab: boolean;
  /** Kernel releases from vmlinuz-<release> in /boot and at the partition's top (a separate /boot). */
  kernels: string[];
}

const RELEASE_FILES = ['/etc/redhat-release', '/etc/SuSE-release', '/etc/debian_version'];
const COMMANDS = [
  'cat /etc/os-release',
  'cat /usr/lib/os-release',
  ...RELEASE_FILES.map((f) => `cat ${f}`),
  'ls -p /etc',
  'ls -p /boot',
  'ls -p /',
];

/** os-release syntax: KEY=value, the value optionally quoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** Names in `ls -p` output (`/inode/mode/uid/gid/name/size/`), regular files only when asked. */
function names(listing: string, filesOnly = false): string[] {
  return listing
    .split('\n')
    .map((line) => line.split('/'))
    .filter((f) => f.length >= 7 && (!filesOnly || f[2]!.startsWith('10')))
    .map((f) => f[5]!);
}

export async function readLinuxFiles(rawDisk: string, offset: number): Promise<LinuxFiles> {
  // One debugfs run, commands on stdin; it echoes "debugfs: <command>" before each command's output on stdout.
  const { stdout } = await runTool('debugfs', ['-f', '-', `${rawDisk}?offset=${offset}`], `${COMMANDS.join('\n')}\n`);
  const outputs = new Map<string, string>();
  let current: string | undefined;
  for (const line of stdout.toString('utf8').split('\n')) {
    if (line.startsWith('debugfs: ')) {
      current = line.slice('debugfs: '.length);
      outputs.set(current, '');
    } else if (current !== undefined) {
      outputs.set(current, `${outputs.get(current)}${line}\n`);
    }
  }
  const out = (cmd: string): string => (outputs.get(cmd) ?? '').trim();
  const osText = out('cat /etc/os-release') || out('cat /usr/lib/os-release');
  const releaseFile = RELEASE_FILES.find((f) => out(`cat ${f}`));
  const etc = names(out('ls -p /etc'));
  const kernels = [...names(out('ls -p /boot'), true), ...names(out('ls -p /'), true)]
    .map((n) => /^vmlinuz-(.+)$/.exec(n)?.[1])
    .filter((k): k is string => k !== undefined);
  return {
    osRelease: osText ? parseOsRelease(osText) : undefined,
    release: releaseFile ? { file: releaseFile, text: out(`cat ${releaseFile}`).split('\n')[0]! } : undefined,
    hasEtc: etc.length > 0,
    hasFstab: etc.includes('fstab'),
    kernels: [...new Set(kernels)],
  };
}

/** The distribution as VM Import's list names it (os-release ID), from os-release or the older release files. */
export function distributionOf(files: LinuxFiles): { id: string; name: string } | undefined {
  if (files.osRelease?.ID)
    return { id: files.osRelease.ID, name: files.osRelease.PRETTY_NAME ?? files.osRelease.NAME ?? files.osRelease.ID };
  if (!files.release) return undefined;
  const text = files.release.text;
  if (files.release.file === '/etc/debian_version') return { id: 'debian', name: `Debian ${text}` };
  if (files.release.file === '/etc/SuSE-release')
    return { id: /Enterprise Server/i.test(text) ? 'sles' : 'opensuse', name: text };
  const byName: Array<[RegExp, string]> = [
    [/^CentOS/i, 'centos'],
    [/^Red Hat Enterprise Linux/i, 'rhel'],
    [/^Fedora/i, 'fedora'],
    [/^Rocky/i, 'rocky'],
    [/^(Oracle|Enterprise) Linux/i, 'ol'],
  ];
  return { id: byName.find(([re]) => re.test(text))?.[1] ?? 'unknown', name: text };
}
