/**
 * The inventory's columns and how one row's cells become a VmSpec. Each check pushes a problem naming its
 * column and what to write instead; the zod schema (workflows/types.ts) has the last word on the shape.
 */
import path from 'node:path';
import { isIP } from 'node:net';
import type { VmSpec, VmSpecInput } from '../../common/contracts/migration';
import {
  DISK_FORMATS,
  MAX_DATA_DISKS,
  UPLOAD_FORMATS,
  VM_NAME_PATTERN,
  vmSpecSchema,
} from '../../common/contracts/migration';
import { PROFILE_PATTERN, REGION_PATTERN } from '../../common/aws/targets';

export const COLUMNS = [
  'name',
  'image',
  'format',
  'architecture',
  'instance_type',
  'platform',
  'availability_zone',
  'subnet_id',
  'private_ip',
  'security_groups',
  'volume_size_gib',
  'description',
  'user_data_file',
  'monitoring',
  'shutdown_behavior',
  'wave',
  'tags',
  'boot_check',
  'inspection',
  'site',
  'upload_format',
  'region',
  'aws_profile',
] as const;
export type Column = (typeof COLUMNS)[number];

export const REQUIRED_COLUMNS: readonly Column[] = ['name', 'image', 'architecture', 'instance_type'];

/** VmSpec field → CSV column, to name the column of a schema issue. */
const FIELD_COLUMN: Record<keyof VmSpecInput, Column> = {
  name: 'name',
  image: 'image',
  dataDisks: 'image',
  format: 'format',
  architecture: 'architecture',
  instanceType: 'instance_type',
  platform: 'platform',
  availabilityZone: 'availability_zone',
  subnetId: 'subnet_id',
  privateIp: 'private_ip',
  securityGroups: 'security_groups',
  volumeSizeGib: 'volume_size_gib',
  description: 'description',
  userDataFile: 'user_data_file',
  monitoring: 'monitoring',
  shutdownBehavior: 'shutdown_behavior',
  wave: 'wave',
  tags: 'tags',
  bootCheck: 'boot_check',
  inspection: 'inspection',
  site: 'site',
  uploadFormat: 'upload_format',
  region: 'region',
  awsProfile: 'aws_profile',
};

export interface CellProblem {
  column: Column;
  message: string;
}

export type RowCells = Partial<Record<Column, string>>;

/** What pre-flight needs of a row, known even when other cells of the row are wrong. */
export interface RowFiles {
  /** The boot disk: the image cell's first path. */
  image?: string;
  /** The data disks: the image cell's other paths, in order. */
  dataDisks?: string[];
  format?: VmSpec['format'];
  volumeSizeGib?: number;
  userDataFile?: string;
  platform?: VmSpec['platform'];
  /** `skip`: the guest is not inspected (the operator's call, recorded). */
  inspection?: VmSpec['inspection'];
}

export type RowResult = ({ spec: VmSpec; problems: [] } | { spec?: undefined; problems: CellProblem[] }) & {
  files: RowFiles;
};

/**
 * The image cell: one path, or several separated by `;` (the boot disk first, then the data disks in the
 * order they are attached: /dev/sdf, /dev/sdg, ...). An OVA or OVF stands alone: its disks come from its OVF.
 */
export function imageList(cell: string, problem: (column: Column, message: string) => void): string[] {
  if (cell === '') return [];
  const paths = cell.split(';').map((p) => p.trim());
  if (paths.length === 1) return paths;
  if (paths.some((p) => p === '')) {
    problem('image', `"${cell}": an empty path between ; (separate the disks' paths with one ;)`);
    return paths.filter(Boolean);
  }
  const ova = paths.find((p) => /\.(ova|ovf)$/i.test(p));
  if (ova) problem('image', `"${ova}" is an OVA: name it alone in the image cell (its data disks come from its OVF)`);
  const dataDisks = paths.length - 1;
  if (dataDisks > MAX_DATA_DISKS)
    problem(
      'image',
      `${dataDisks} data disks; vmconvoy attaches at most ${MAX_DATA_DISKS} (/dev/sdf to /dev/sdp): migrate the others separately`
    );
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) problem('image', `"${p}" is named twice in the image cell (each disk once)`);
    seen.add(p);
  }
  return paths;
}

/** One row's cells (already trimmed) → a spec, or every problem found in it. */
export function rowToSpec(cells: RowCells, csvDir: string): RowResult {
  const problems: CellProblem[] = [];
  const problem = (column: Column, message: string): void => {
    problems.push({ column, message });
  };
  const v = (c: Column): string => cells[c] ?? '';
  const opt = (c: Column): string | undefined => (v(c) === '' ? undefined : v(c));

  for (const c of REQUIRED_COLUMNS) if (v(c) === '') problem(c, `${c} is required`);
  if (v('name') && !VM_NAME_PATTERN.test(v('name')))
    problem('name', `"${v('name')}": use 1-64 characters of A-Z a-z 0-9 . _ -`);

  const format = v('format').toUpperCase();
  if (format && !(DISK_FORMATS as readonly string[]).includes(format)) {
    problem(
      'format',
      `"${v('format')}" is not VMDK, RAW, VHD, QCOW2, VHDX or OVA (or leave it empty to detect the format)`
    );
  }
  const arch = v('architecture');
  if (arch && arch !== 'i386' && arch !== 'x86_64')
    problem('architecture', `"${arch}" is not supported: use i386 or x86_64`);
  const platform = v('platform');
  if (platform && !/^windows$/i.test(platform))
    problem('platform', `"${platform}": write Windows, or leave it empty for Linux`);
  const ip = v('private_ip');
  if (ip && isIP(ip) !== 4) problem('private_ip', `"${ip}" is not an IPv4 address`);
  const inspection = v('inspection').toLowerCase();
  if (inspection && inspection !== 'enforce' && inspection !== 'skip')
    problem('inspection', `"${v('inspection')}": use enforce or skip (or leave it empty to enforce)`);
  const uploadFormat = v('upload_format').toLowerCase();
  if (uploadFormat && !(UPLOAD_FORMATS as readonly string[]).includes(uploadFormat))
    problem(
      'upload_format',
      `"${v('upload_format')}": use stream-optimized or as-is (or leave it empty for the batch's choice)`
    );
  // --- accounts (issue 20): the Region and profile to import with (empty = the worker's).
  if (v('region') && !REGION_PATTERN.test(v('region')))
    problem(
      'region',
      `"${v('region')}" is not a Region name: write one such as eu-west-1, or leave it empty for the worker's`
    );
  if (v('aws_profile') && !PROFILE_PATTERN.test(v('aws_profile')))
    problem('aws_profile', `"${v('aws_profile')}" is not a profile name: use 1-64 of A-Z a-z 0-9 . _ @ + = , -`);
  const shutdown = v('shutdown_behavior').toLowerCase();
  if (shutdown && shutdown !== 'stop' && shutdown !== 'terminate')
    problem('shutdown_behavior', `"${v('shutdown_behavior')}": use stop or terminate`);

  const int = (c: Column, min: number): number | undefined => {
    const text = v(c);
    if (text === '') return undefined;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min) {
      problem(c, `"${text}" must be a whole number of at least ${min}`);
      return undefined;
    }
    return n;
  };
  const bool = (c: Column): boolean | undefined => {
    const text = v(c).toLowerCase();
    if (text === '') return undefined;
    if (text === 'true') return true;
    if (text === 'false') return false;
    problem(c, `"${v(c)}" must be true or false`);
    return undefined;
  };
  const list = (c: Column): string[] =>
    v(c)
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean);

  // A Map, not an object: a tag named `toString` or `__proto__` must be a tag like any other.
  const tagMap = new Map<string, string>();
  for (const pair of list('tags')) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (!key) problem('tags', `"${pair}" is not key=value (separate tags with ;)`);
    else if (/^aws:/i.test(key)) problem('tags', `tag "${key}": keys starting with aws: are reserved by AWS`);
    // JavaScript objects carry tags through zod and workflow payloads; this one key would vanish on the way.
    else if (key === '__proto__') problem('tags', 'tag "__proto__" cannot be carried: rename it');
    else if (tagMap.has(key)) problem('tags', `tag "${key}" is given twice`);
    else tagMap.set(key, pair.slice(eq + 1).trim());
  }

  const disks = imageList(v('image'), problem).map((p) => path.resolve(csvDir, p));
  const candidate: VmSpecInput = {
    name: v('name'),
    image: disks[0] ?? '',
    dataDisks: disks.length > 1 ? disks.slice(1) : undefined,
    format: format ? (format as VmSpecInput['format']) : undefined,
    architecture: arch as VmSpecInput['architecture'],
    instanceType: v('instance_type'),
    platform: platform ? 'Windows' : undefined,
    availabilityZone: opt('availability_zone'),
    subnetId: opt('subnet_id'),
    privateIp: opt('private_ip'),
    securityGroups: list('security_groups'),
    volumeSizeGib: int('volume_size_gib', 1),
    description: opt('description'),
    userDataFile: v('user_data_file') ? path.resolve(csvDir, v('user_data_file')) : undefined,
    monitoring: bool('monitoring'),
    shutdownBehavior: shutdown ? (shutdown as VmSpecInput['shutdownBehavior']) : undefined,
    wave: int('wave', 1),
    tags: Object.fromEntries(tagMap),
    bootCheck: bool('boot_check'),
    inspection: inspection ? (inspection as VmSpecInput['inspection']) : undefined,
    site: opt('site'),
    uploadFormat: uploadFormat ? (uploadFormat as VmSpecInput['uploadFormat']) : undefined,
    region: opt('region'),
    awsProfile: opt('aws_profile'),
  };
  const files: RowFiles = {
    image: candidate.image || undefined,
    dataDisks: candidate.dataDisks,
    format: problems.some((p) => p.column === 'format') ? undefined : candidate.format,
    volumeSizeGib: candidate.volumeSizeGib,
    userDataFile: candidate.userDataFile,
    platform: candidate.platform,
    inspection: candidate.inspection,
  };
  if (problems.length > 0) return { problems, files };

  const parsed = vmSpecSchema.safeParse(candidate);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const column = FIELD_COLUMN[issue.path[0] as keyof VmSpecInput] ?? 'name';
      problem(column, issue.message);
    }
    return { problems, files };
  }
  return { spec: parsed.data, problems: [], files };
}
