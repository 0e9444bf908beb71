/**
 * VM Import's Linux rules applied to what linux-files.ts read: the distribution and version, the kernels
 * against the supported list (common/vm-import-rules.ts), GRUB, and /etc/fstab (device names change on EC2;
 * network mounts hang the first boot). Sources: the VM Import guide's prerequisites, limitations and
 * troubleshooting pages ("Unsupported kernel version", "Could not read fstab", "Unknown OS").
 */
import { SUPPORTED_LINUX, distributionVersionListed, kernelListed, listedKernels } from '../../common/vm-import-rules';
import type { LinuxFiles } from './linux-files';
import type { GuestReason } from './reasons';

export interface Distribution {
  /** os-release ID as the supported list keys it (centos, rhel, ubuntu, ...). */
  id: string;
  /** For humans: PRETTY_NAME or the release file's line. */
  name: string;
  version?: string;
}

const RELEASE_NAMES: ReadonlyArray<[RegExp, string]> = [
  [/^CentOS/i, 'centos'],
  [/^Red Hat Enterprise Linux/i, 'rhel'],
  [/^Fedora/i, 'fedora'],
  [/^Rocky/i, 'rocky'],
  [/^(Oracle|Enterprise) Linux/i, 'ol'],
  [/^Amazon Linux/i, 'amzn'],
];

/** The distribution from os-release, else redhat-release, lsb-release, SuSE-release or debian_version. */
export function distributionOf(f: LinuxFiles): Distribution | undefined {
  const os = f.osRelease;
  if (os?.ID) return { id: os.ID.toLowerCase(), name: os.PRETTY_NAME ?? os.NAME ?? os.ID, version: os.VERSION_ID };
  const numbers = (t: string): string | undefined => /(\d+(?:\.\d+)*)/.exec(t)?.[1];
  if (f.redhatRelease) {
    const id = RELEASE_NAMES.find(([re]) => re.test(f.redhatRelease!))?.[1] ?? 'unknown';
    return { id, name: f.redhatRelease, version: numbers(f.redhatRelease) };
  }
  const lsb = f.lsbRelease;
  if (lsb?.DISTRIB_ID)
    return {
      id: lsb.DISTRIB_ID.toLowerCase(),
      name: lsb.DISTRIB_DESCRIPTION ?? lsb.DISTRIB_ID,
      version: lsb.DISTRIB_RELEASE,
    };
  if (f.suseRelease) {
    const id = /Enterprise Server/i.test(f.suseRelease) ? 'sles' : 'opensuse';
    return { id, name: f.suseRelease, version: numbers(f.suseRelease) };
  }
  if (f.debianVersion) return { id: 'debian', name: `Debian ${f.debianVersion}`, version: numbers(f.debianVersion) };
  return undefined;
}

const DEVICE_NAME = /^\/dev\/(sd|hd|vd|xvd|nvme)[a-z0-9]*$/;
const NETWORK_TYPES = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smbfs',
  'smb3',
  'glusterfs',
  'ceph',
  'fuse.sshfs',
  'sshfs',
  '9p',
]);

/** fstab lines whose device is a kernel device name, and those that mount over the network. */
export function fstabFindings(fstab: string): { byDevice: string[]; network: string[] } {
  const byDevice: string[] = [];
  const network: string[] = [];
  for (const line of fstab.split('\n')) {
    const fields = line.replace(/#.*/, '').trim().split(/\s+/);
    if (fields.length < 3) continue;
    const [device = '', mountPoint = '', type = ''] = fields;
    if (DEVICE_NAME.test(device)) byDevice.push(`${device} on ${mountPoint}`);
    if (NETWORK_TYPES.has(type) || /^[^/=]+:\//.test(device) || device.startsWith('//')) network.push(mountPoint);
  }
  return { byDevice, network };
}

export function linuxReasons(
  root: LinuxFiles,
  boot: LinuxFiles | undefined,
  distro: Distribution | undefined
): GuestReason[] {
  const out: GuestReason[] = [];
  const add = (rule: string, severity: GuestReason['severity'], message: string, fix: string): void => {
    out.push({ rule, severity, message, fix });
  };
  if (!distro) {
    add(
      'linux-distribution',
      'refuse',
      'No /etc/os-release, /etc/redhat-release, /etc/lsb-release or other release file: VM Import would fail with "Unknown OS / Missing OS files".',
      "Check that the image is the VM's system disk and that its root file system holds /etc."
    );
    return out;
  }
  const listed = SUPPORTED_LINUX[distro.id];
  if (!listed) {
    add(
      'linux-distribution',
      'refuse',
      `${distro.name} is not on VM Import's list of Linux distributions.`,
      `Import a supported distribution (${Object.values(SUPPORTED_LINUX)
        .map((d) => d.name)
        .join(', ')}), or use ImportImage if it supports it.`
    );
    return out;
  }
  if (distro.version && !distributionVersionListed(distro.id, distro.version))
    add(
      'linux-version',
      'warn',
      `${distro.name}: version ${distro.version} is not among the versions VM Import lists for ${listed.name}.`,
      `Upgrade to a listed ${listed.name} version before the import.`
    );
  const kernels = [...new Set([...root.kernels, ...(boot?.kernels ?? [])])];
  const candidates = kernels.length > 0 ? kernels : root.modules;
  if (candidates.length === 0) {
    add(
      'linux-kernel',
      'refuse',
      'No kernel found in /boot (vmlinuz-*) or /lib/modules.',
      "Check that the image holds the VM's /boot, on the same disk as its root."
    );
  } else {
    const ok = candidates.filter((k) => kernelListed(distro.id, k));
    const bad = candidates.filter((k) => !kernelListed(distro.id, k));
    const list = listedKernels(distro.id).join(', ');
    if (ok.length === 0)
      add(
        'linux-kernel',
        'refuse',
        `Unsupported kernel version ${bad.join(', ')}: VM Import lists these kernels for ${listed.name}: ${list || 'its el5uek kernels'}.`,
        `Install a listed kernel (upgrade ${listed.name} to a supported release) and make it GRUB's default before exporting the VM.`
      );
    else if (bad.length > 0)
      add(
        'linux-kernel',
        'warn',
        `Kernels ${bad.join(', ')} are not on VM Import's list (${ok.join(', ')} is).`,
        `Make ${ok[0]} GRUB's default kernel, or remove the others.`
      );
  }
  if (!root.grub && !boot?.grub)
    add(
      'grub',
      'refuse',
      'No GRUB configuration (grub.cfg, menu.lst or grub.conf) in /boot.',
      'Install GRUB (legacy or GRUB 2) as the boot loader; VM Import needs it to boot the instance.'
    );
  if (root.fstab === undefined)
    add(
      'fstab',
      'refuse',
      'No /etc/fstab: VM Import would fail with "Invalid configuration - Could not read fstab".',
      'Restore /etc/fstab in the VM before exporting it.'
    );
  else {
    const { byDevice, network } = fstabFindings(root.fstab);
    if (byDevice.length > 0)
      add(
        'fstab-device-names',
        'warn',
        `/etc/fstab mounts by device name (${byDevice.join(', ')}); device names change on EC2 and the instance may not boot.`,
        'Mount by UUID= or LABEL= in /etc/fstab.'
      );
    if (network.length > 0)
      add(
        'fstab-network-mounts',
        'warn',
        `/etc/fstab mounts network file systems (${network.join(', ')}); unreachable after the import, they can stop the first boot.`,
        'Comment them out or add nofail before exporting the VM; restore them after the import.'
      );
  }
  return out;
}
