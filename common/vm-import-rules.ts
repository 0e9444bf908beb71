/**
 * VM Import's own rules for ImportInstance, as data, each with the AWS page it comes from: which instance
 * types take a Linux import, which operating systems and kernels VM Import supports, what a guest needs
 * (MBR boot disk of at most 2 TiB, free space for drivers), and EC2's limits on what a launch sends. The CLI
 * (validate), the pre-flight activity and the guest inspection all read them here. Sandbox-safe: no Node
 * built-ins, so workflows may import it too. The simulator keeps its own, independent copy (sim/data).
 */
import { MAX_USER_DATA_BYTES } from './contracts/limits';

const GUIDE = 'https://docs.aws.amazon.com/vm-import/latest/userguide';
export const SOURCES = {
  /** "Requirements for resources that you import with VM Import/Export": OS table, instance types (read 2026-12). */
  prerequisites: `${GUIDE}/prerequisites.html`,
  /** The same requirements in the guide's older single page (instance types for a Linux ImportInstance). */
  instanceTypes: `${GUIDE}/vmie_prereqs.html#vmimport-instance-types`,
  /** "Limitations for resources imported by VM Import/Export". */
  limitations: `${GUIDE}/limitations-image.html`,
  /** "Importing a VM as an instance" (ImportInstance: Regions, no UEFI, single volume). */
  instanceImport: `${GUIDE}/vmimport-instance-import.html`,
  /** "Troubleshooting VM Import/Export" (the failures this module predicts). */
  troubleshooting: `${GUIDE}/vmimport-troubleshooting.html`,
  userData: 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html',
  tags: 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions',
} as const;

/**
 * Instance types a Linux ImportInstance takes ("Linux is not supported on the requested instance" for any
 * other): the guide's prerequisites list, with the cluster and high-I/O types its instance-import page adds.
 */
export const LINUX_INSTANCE_TYPES: readonly string[] = [
  ...['t2.micro', 't2.small', 't2.medium'],
  ...['m3.medium', 'm3.large', 'm3.xlarge', 'm3.2xlarge'],
  ...['c3.large', 'c3.xlarge', 'c3.2xlarge', 'c3.4xlarge', 'c3.8xlarge', 'cc1.4xlarge', 'cc2.8xlarge'],
  ...['r3.large', 'r3.xlarge', 'r3.2xlarge', 'r3.4xlarge', 'r3.8xlarge', 'cr1.8xlarge'],
  ...['i2.xlarge', 'i2.2xlarge', 'i2.4xlarge', 'i2.8xlarge', 'hi1.4xlarge', 'hi1.8xlarge'],
];

/**
 * Windows imports go into "most instance types" (same page). What cannot run Windows at all is refused:
 * Arm (a1 and the Graviton families, a `g` right after the generation digit: m6g, c7gn, t4g) and Mac hosts.
 */
export function windowsCannotRun(instanceType: string): boolean {
  const family = instanceType.split('.')[0] ?? '';
  return family === 'a1' || family.startsWith('mac') || /^[a-z]+\d+g/.test(family);
}

/** Regions that offer ImportInstance; the guide says no other Region will get it. */
export const IMPORT_INSTANCE_REGIONS: readonly string[] = [
  ...['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'ca-central-1', 'us-gov-west-1', 'sa-east-1'],
  ...['eu-west-1', 'eu-central-1', 'ap-southeast-1', 'ap-northeast-1', 'ap-southeast-2', 'ap-northeast-2'],
  ...['ap-south-1', 'cn-north-1'],
];

/** Free space VM Import needs on the root volume to install drivers (limitations page). */
export const MIN_FREE_BYTES = { linux: 250 * 1024 * 1024, windows: 6 * 1024 ** 3 } as const;
/** A boot volume must be MBR-partitioned, so at most 2 TiB (limitations page; ImportInstance has no UEFI). */
export const MAX_BOOT_VOLUME_BYTES = 2 * 1024 ** 4;
/** EC2 tag restrictions. */
export const TAG_LIMITS = { maxTags: 50, maxKeyLength: 128, maxValueLength: 256, reservedPrefix: 'aws:' } as const;
export { MAX_USER_DATA_BYTES };

/** One row of the guide's Linux table: versions `from`–`to` (or one) with the kernels listed for them. */
export interface LinuxRow {
  from: string;
  to?: string;
  kernels: readonly string[];
}
export interface LinuxDistribution {
  name: string;
  rows: readonly LinuxRow[];
  /** Kernel releases the guide names as exceptions inside a listed series. */
  except?: readonly string[];
  /** A kernel suffix that the guide accepts whatever the series (Oracle Linux 5: el5uek). */
  anySuffix?: string;
}

/**
 * "Operating systems supported by VM Import/Export", Linux/Unix (64-bit only; prerequisites page, read
 * 2026-12), one distribution a line keyed by its os-release ID: `versions:kernel,kernel` per row of the
 * page. For the newest Fedora and Ubuntu rows the version is the release that shipped the listed kernel.
 * Oracle Linux 5.10-5.11 takes any kernel with the el5uek suffix; RHEL 6 excludes 2.6.32-71.
 */
const LINUX_TABLE = `
amzn   | Amazon Linux                 | 2:4.14,4.19,5.4,5.10 2023:6.1
centos | CentOS                       | 5.1-5.11:2.6.18 6.1-6.8:2.6.32 7.0-7.9:3.10.0 8.0-8.2:4.18.0 9:5.14.0
debian | Debian                       | 6.0.0-6.0.8:2.6.32 7.0.0-7.8.0:3.2.0 10:4.19.0 11:5.10.0 12:6.1.0
fedora | Fedora                       | 18:3.2.5 19:3.9.5 20:3.11.10 37:6.0.7 38:6.2.9 39:6.5.6 40:6.8.5 41:6.11.4 42:6.14.0 43:6.17.1
ol     | Oracle Linux                 | 5.10-5.11: 6.1-6.10:2.6.32,2.6.39,3.8.13,4.1.12 7.0-7.6:3.10.0,3.8.13,4.1.12,4.14.35,4.15,5.4.17 8:4.18.0,5.4.17,5.15.0 9:5.14.0,5.15.0 10:6.12.0
rhel   | Red Hat Enterprise Linux     | 5:2.6.18 6:2.6.32 7:3.10.0 8.0-8.6:4.18.0 9:5.14.0 10:6.12.0
rocky  | Rocky Linux                  | 9:5.14.0 10:6.12.0
sles   | SUSE Linux Enterprise Server | 11:2.6.32.12,3.0.13,3.0.76,3.0.101 12:3.12.28,3.12.49,4.4,4.12 15:4.12,5.3,5.14.21,6.4
ubuntu | Ubuntu                       | 12.04:3.2.0 12.10:3.5.0 13.04:3.8.0 13.10:3.11 14.04:3.13.0 14.10:3.16 15.04:3.19.0 15.10:4.2.0 16.04:4.4.0 16.10:4.8.0 17.04:4.10.0 18.04:4.15.0 20.04:5.4.0 22.04:5.15.0 24.04:6.8.0 24.10:6.11.0 25.10:6.17.0 26.04:7.0.0
`;
const EXTRAS: Record<string, Pick<LinuxDistribution, 'except' | 'anySuffix'>> = {
  ol: { anySuffix: 'el5uek' },
  rhel: { except: ['2.6.32-71'] },
};

function parseLinuxTable(table: string): Record<string, LinuxDistribution> {
  const out: Record<string, LinuxDistribution> = {};
  for (const line of table.trim().split('\n')) {
    const [id = '', name = '', rows = ''] = line.split('|').map((f) => f.trim());
    out[id] = {
      name,
      ...EXTRAS[id],
      rows: rows.split(/\s+/).map((cell) => {
        const [versions = '', kernels = ''] = cell.split(':');
        const [from = '', to] = versions.split('-');
        return { from, to, kernels: kernels ? kernels.split(',') : [] };
      }),
    };
  }
  return out;
}

export const SUPPORTED_LINUX: Readonly<Record<string, LinuxDistribution>> = parseLinuxTable(LINUX_TABLE);

/** Numeric comparison of dotted versions over the shorter of the two ("7" vs "7.9" compares equal). */
function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0 && !Number.isNaN(d)) return d;
  }
  return 0;
}

/** A listed series matches a release that continues it with its end, `-`, `.` or `_` ("3.10.0" ~ "3.10.0-1160.el7"). */
function seriesMatches(series: string, release: string): boolean {
  return release.startsWith(series) && /^($|[-._])/.test(release.slice(series.length));
}

export function distributionVersionListed(id: string, version: string): boolean {
  const rows = SUPPORTED_LINUX[id]?.rows ?? [];
  return rows.some((r) => compareVersions(version, r.from) >= 0 && compareVersions(version, r.to ?? r.from) <= 0);
}

/**
 * Whether VM Import supports this kernel for this distribution: any kernel the page lists for any of the
 * distribution's rows (a distribution's later kernels also run on its earlier releases as updates).
 */
export function kernelListed(id: string, release: string): boolean {
  const distro = SUPPORTED_LINUX[id];
  if (!distro) return false;
  if ((distro.except ?? []).some((x) => seriesMatches(x, release))) return false;
  if (distro.anySuffix && release.includes(distro.anySuffix)) return true;
  return distro.rows.some((r) => r.kernels.some((k) => seriesMatches(k, release)));
}

/** The kernels listed for a distribution, for messages ("listed for CentOS: 2.6.18, 2.6.32, ..."). */
export function listedKernels(id: string): string[] {
  return [...new Set((SUPPORTED_LINUX[id]?.rows ?? []).flatMap((r) => r.kernels))];
}

/** Windows rows of the same page; `uefiOnly` ones cannot go through ImportInstance, which has no UEFI. */
export const SUPPORTED_WINDOWS: readonly { name: string; pattern: RegExp; uefiOnly?: boolean }[] = [
  { name: 'Windows Server 2003 (SP1 or later) / 2003 R2', pattern: /Server(?:\s*\(R\))?\s*2003/i },
  ...['2008', '2012', '2016', '2019', '2022', '2025'].map((y) => ({
    name: `Windows Server ${y}`,
    pattern: new RegExp(`Server(?:\\s*\\(R\\))?\\s*${y}\\b`, 'i'),
  })),
  { name: 'Windows 7, 8, 8.1, 10', pattern: /^(Microsoft )?Windows (7|8|8\.1|10)\b/i },
  { name: 'Windows 11', pattern: /^(Microsoft )?Windows 11\b/i, uefiOnly: true },
];

export interface WindowsVerdict {
  supported: boolean;
  why?: string;
}

/** Judges a Windows product from its registry values (ProductName, CSDVersion, ReleaseId, InstallationType). */
export function windowsListed(p: {
  productName: string;
  servicePack?: string;
  releaseId?: string;
  installationType?: string;
}): WindowsVerdict {
  if (/nano/i.test(p.installationType ?? ''))
    return { supported: false, why: 'Nano Server installations are not supported' };
  const match = SUPPORTED_WINDOWS.find((w) => w.pattern.test(p.productName));
  if (match?.uefiOnly)
    return { supported: false, why: `${match.name} boots only with UEFI, which ImportInstance does not take` };
  if (match) {
    const r2 = /2003\s*R2/i.test(p.productName);
    if (/2003/.test(p.productName) && !r2 && !/Service Pack [1-9]/i.test(p.servicePack ?? ''))
      return { supported: false, why: 'Windows Server 2003 needs Service Pack 1 or later' };
    return { supported: true };
  }
  // The semi-annual Server releases 1709 and 1803 carry no year in their name.
  if (/Windows Server (Standard|Datacenter)/i.test(p.productName) && /^(1709|1803)$/.test(p.releaseId ?? ''))
    return { supported: true };
  return { supported: false, why: `${p.productName} is not on VM Import's list of Windows versions` };
}

// ---------------------------------------------------------------------------------------------------
// Launch rules: what an inventory row asks of ImportInstance
// ---------------------------------------------------------------------------------------------------

export interface RuleRefusal {
  /** Stable rule name, e.g. `linux-instance-type`. */
  rule: string;
  message: string;
  /** What to change. */
  fix: string;
  /** The AWS page the rule comes from. */
  source: string;
}

export interface LaunchSpec {
  architecture: 'i386' | 'x86_64';
  instanceType: string;
  platform?: 'Windows';
  privateIp?: string;
  tags?: Record<string, string>;
  volumeSizeGib?: number;
  /** Network interfaces asked for (ImportInstance attaches one). @default 1 */
  networkInterfaces?: number;
  /** The user data's size in bytes, before base64, when there is any. */
  userDataBytes?: number;
  /** The disk's virtual size, when known (pre-flight). */
  virtualBytes?: number;
}

const SIZES = ['micro', 'small', 'medium', 'large', 'xlarge', '2xlarge', '4xlarge', '8xlarge'];
/** Which Linux-capable family stands in for a family class: general, compute, memory, storage, burstable. */
const CLASS_FAMILY: Record<string, string> = Object.fromEntries(
  'm:m3 c:c3 r:r3 x:r3 z:r3 u:r3 i:i2 d:i2 h:i2 t:t2'.split(' ').map((p): [string, string] => [p[0]!, p.slice(2)])
);

/**
 * The Linux-capable type closest to `instanceType`: the same class (general m, compute c, memory r, storage
 * i, burstable t) at the nearest size. Sizes past what the old families offer take their largest.
 */
export function nearestLinuxInstanceType(instanceType: string): string {
  const [family = '', size = 'large'] = instanceType.split('.');
  const target = CLASS_FAMILY[family.charAt(0)] ?? 'm3';
  const offered = LINUX_INSTANCE_TYPES.filter((t) => t.startsWith(`${target}.`));
  const rank = (s: string): number => {
    const i = SIZES.indexOf(s);
    return i >= 0 ? i : /^\d+xlarge$/.test(s) ? SIZES.length : SIZES.indexOf('large');
  };
  const wanted = rank(size);
  let best = offered[0]!;
  for (const t of offered) {
    const d = Math.abs(rank(t.split('.')[1]!) - wanted);
    if (d < Math.abs(rank(best.split('.')[1]!) - wanted)) best = t;
  }
  return best;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Each launch rule: its source and what to change (a rule whose fix depends on the row gives its own). */
const LAUNCH_RULES = {
  'linux-64-bit': [SOURCES.limitations, 'Set architecture to x86_64 and import a 64-bit guest (no 32-bit Linux).'],
  'linux-instance-type': [SOURCES.instanceTypes, ''],
  'windows-instance-type': [SOURCES.instanceTypes, 'Choose an x86_64 instance type, e.g. m5.large.'],
  'one-network-interface': [SOURCES.limitations, 'Ask for one interface and attach the others after the import.'],
  'private-ipv4': [SOURCES.limitations, 'Give one private IPv4 address inside the subnet, or leave it empty for DHCP.'],
  'user-data-size': [SOURCES.userData, 'Shorten the user data, e.g. have it download a larger script.'],
  'boot-volume-2tib': [SOURCES.limitations, 'Keep the boot disk under 2 TiB; move data to a volume (ImportVolume).'],
  'volume-size': [SOURCES.instanceImport, ''],
} as const satisfies Record<string, readonly [string, string]>;

/** Every launch rule the row breaks; empty when ImportInstance would take it. */
export function checkLaunchRules(spec: LaunchSpec): RuleRefusal[] {
  const out: RuleRefusal[] = [];
  const refuse = (rule: keyof typeof LAUNCH_RULES, message: string, fix?: string): void => {
    const [source, standing] = LAUNCH_RULES[rule];
    out.push({ rule, message, fix: fix ?? standing, source });
  };
  const linux = spec.platform !== 'Windows';
  const type = spec.instanceType;
  if (linux && spec.architecture !== 'x86_64')
    refuse('linux-64-bit', `Linux imports must be 64-bit; this row asks for ${spec.architecture}.`);
  if (linux && !LINUX_INSTANCE_TYPES.includes(type)) {
    const near = nearestLinuxInstanceType(type);
    const why = `ImportInstance does not take Linux on ${type} ("Linux is not supported on the requested instance").`;
    refuse(
      'linux-instance-type',
      why,
      `Set instance type to ${near} (the nearest type VM Import takes for Linux) and resize after the import, or use ImportImage.`
    );
  }
  if (!linux && windowsCannotRun(type))
    refuse('windows-instance-type', `${type} cannot run Windows (an Arm or Mac type).`);
  const nics = spec.networkInterfaces ?? 1;
  if (nics > 1)
    refuse('one-network-interface', `VM Import gives an instance one network interface; this row asks for ${nics}.`);
  if (spec.privateIp !== undefined && !IPV4.test(spec.privateIp))
    refuse(
      'private-ipv4',
      `The private IP "${spec.privateIp}" is not one IPv4 address (VM Import gives one private IPv4 address, no IPv6).`
    );
  if (spec.userDataBytes !== undefined && spec.userDataBytes > MAX_USER_DATA_BYTES)
    refuse(
      'user-data-size',
      `User data is ${spec.userDataBytes} bytes; EC2 takes at most ${MAX_USER_DATA_BYTES} (16 KiB) before base64.`
    );
  out.push(...checkTags(spec.tags ?? {}));
  const volumeBytes = spec.volumeSizeGib !== undefined ? spec.volumeSizeGib * 1024 ** 3 : undefined;
  for (const [what, bytes] of [
    ['volume size', volumeBytes],
    ['disk', spec.virtualBytes],
  ] as const) {
    if (bytes !== undefined && bytes > MAX_BOOT_VOLUME_BYTES)
      refuse(
        'boot-volume-2tib',
        `The boot ${what} is ${(bytes / 1024 ** 4).toFixed(2)} TiB; an MBR boot volume holds at most 2 TiB.`
      );
  }
  if (volumeBytes !== undefined && spec.virtualBytes !== undefined && volumeBytes < spec.virtualBytes) {
    const needed = Math.ceil(spec.virtualBytes / 1024 ** 3);
    refuse(
      'volume-size',
      `volumeSizeGib ${spec.volumeSizeGib} is smaller than the ${needed} GiB disk.`,
      `Set volumeSizeGib to at least ${needed}, or leave it empty.`
    );
  }
  return out;
}

export function checkTags(tags: Record<string, string>): RuleRefusal[] {
  const out: RuleRefusal[] = [];
  const entries = Object.entries(tags);
  const refuse = (message: string, fix: string): void => {
    out.push({ rule: 'ec2-tags', message, fix, source: SOURCES.tags });
  };
  if (entries.length > TAG_LIMITS.maxTags)
    refuse(`${entries.length} tags; EC2 allows ${TAG_LIMITS.maxTags} per resource.`, 'Drop tags until 50 remain.');
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > TAG_LIMITS.maxKeyLength)
      refuse(`Tag key "${key.slice(0, 40)}" has ${key.length} characters (1-128).`, 'Shorten the key.');
    if (value.length > TAG_LIMITS.maxValueLength)
      refuse(`The value of tag "${key}" has ${value.length} characters (at most 256).`, 'Shorten the value.');
    if (key.toLowerCase().startsWith(TAG_LIMITS.reservedPrefix))
      refuse(`Tag key "${key}" starts with "aws:", which AWS reserves.`, 'Rename the key.');
  }
  return out;
}

export function importInstanceOffered(region: string): boolean {
  return IMPORT_INSTANCE_REGIONS.includes(region);
}
