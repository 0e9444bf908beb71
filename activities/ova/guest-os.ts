/**
 * What an OVF's OS and hardware mean for VM Import: the platform (Windows or Linux) and an instance type
 * VM Import takes for it (common/vm-import-rules.ts) with at least the VM's CPUs and memory.
 */
import type { OvfSummary } from '../../common/contracts/activity-io';
import { LINUX_INSTANCE_TYPES, windowsCannotRun } from '../../common/vm-import-rules';
import type { OvfDescriptor } from './ovf';

/**
 * vCPUs and memory (MiB) of the instance types suggested, smallest first. EC2 user guide, "Amazon EC2
 * instance type specifications" (previous-generation tables for t2, m3, c3, r3): public figures of each type.
 */
const SPECS: ReadonlyArray<readonly [type: string, vcpus: number, memoryMiB: number]> = [
  ['t2.micro', 1, 1024],
  ['t2.small', 1, 2048],
  ['t2.medium', 2, 4096],
  ['m3.medium', 1, 3840],
  ['m3.large', 2, 7680],
  ['c3.xlarge', 4, 7680],
  ['m3.xlarge', 4, 15360],
  ['r3.large', 2, 15616],
  ['c3.2xlarge', 8, 15360],
  ['m3.2xlarge', 8, 30720],
  ['r3.xlarge', 4, 31232],
  ['c3.4xlarge', 16, 30720],
  ['r3.2xlarge', 8, 62464],
  ['c3.8xlarge', 32, 61440],
  ['r3.4xlarge', 16, 124928],
  ['r3.8xlarge', 32, 249856],
];

/** Windows or Linux from VMware's guest ID or the OS description; undefined when neither says. */
export function platformOf(ovf: Pick<OvfDescriptor, 'vmwOsType' | 'osDescription'>): 'Windows' | 'Linux' | undefined {
  const guest = (ovf.vmwOsType ?? '').toLowerCase();
  const description = (ovf.osDescription ?? '').toLowerCase();
  if (guest.startsWith('win') || description.includes('windows')) return 'Windows';
  const linux = /linux|ubuntu|debian|centos|rhel|red ?hat|suse|sles|fedora|oracle|rocky|alma|amazon/;
  if (linux.test(guest) || linux.test(description)) return 'Linux';
  return undefined;
}

/** The smallest listed type VM Import takes for `platform` with at least the CPUs and memory asked for. */
export function suggestInstanceType(
  platform: 'Windows' | 'Linux' | undefined,
  cpus: number | undefined,
  memoryMiB: number | undefined
): string | undefined {
  if (platform === undefined) return undefined;
  const allowed = (type: string): boolean =>
    platform === 'Linux' ? LINUX_INSTANCE_TYPES.includes(type) : !windowsCannotRun(type);
  const fits = SPECS.filter(([type, v, m]) => allowed(type) && v >= (cpus ?? 1) && m >= (memoryMiB ?? 0));
  // Fewest vCPUs, then least memory: the least capacity (and, within these families, price) that holds the VM.
  fits.sort((a, b) => a[1] - b[1] || a[2] - b[2]);
  return fits[0]?.[0] ?? SPECS.filter(([type]) => allowed(type)).at(-1)?.[0];
}

export function summarizeOvf(ovf: OvfDescriptor): OvfSummary {
  const platform = platformOf(ovf);
  const osType = [ovf.vmwOsType, ovf.osDescription].filter(Boolean).join(' / ') || ovf.osId;
  return {
    disks: ovf.disks.length,
    osType,
    platform,
    cpus: ovf.cpus,
    memoryMiB: ovf.memoryMiB,
    suggestedInstanceType: suggestInstanceType(platform, ovf.cpus, ovf.memoryMiB),
  };
}
