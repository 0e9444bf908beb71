/**
 * What EC2 would say about the rows' network, asked before any byte moves, with read-only calls and one of
 * each per batch of rows (values deduplicated, filters rather than IDs so one unknown value does not fail
 * the whole call): DescribeAvailabilityZones, DescribeSubnets, DescribeSecurityGroups. Checks:
 * - the availability zone exists in the Region, and agrees with the subnet's zone;
 * - the subnet exists;
 * - each security group exists (by ID) or is named in the instance's VPC, and is in the subnet's VPC;
 * - the private IP lies in the subnet's CIDR block, not among its first four addresses nor its last (AWS
 *   reserves them: EC2 API reference, CreateSubnet; VPC User Guide, "Subnet CIDR blocks").
 * Without a subnet the instance goes to the zone's default subnet of the default VPC (VPC User Guide,
 * "Default VPCs"): groups and the address are checked against that one. Used by the onlineChecks activity
 * and by the CLI (`validate --online`, `start`).
 */
import type { EC2Client, Filter, SecurityGroup, Subnet } from '@aws-sdk/client-ec2';
import {
  DescribeAvailabilityZonesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
} from '@aws-sdk/client-ec2';
import type { VmSpec } from '../common/contracts/migration';

export interface OnlineRow {
  /** 1-based CSV line (0 when the row has none, e.g. inside a workflow). */
  line: number;
  spec: Pick<VmSpec, 'name' | 'availabilityZone' | 'subnetId' | 'privateIp' | 'securityGroups'>;
}

export interface OnlineProblem {
  line: number;
  column?: string;
  message: string;
}

/** How many values EC2 takes in one filter (the API reference's filter pages allow up to 200). */
const FILTER_VALUES = 200;

const chunks = <T>(values: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(values.length / size) }, (_, i) => values.slice(i * size, (i + 1) * size));

/** Every page of a describe call, for each chunk of filter values. */
async function describeAll<T>(
  values: string[],
  send: (filterValues: string[], nextToken: string | undefined) => Promise<{ items: T[]; nextToken?: string }>
): Promise<T[]> {
  const out: T[] = [];
  for (const chunk of chunks(values, FILTER_VALUES)) {
    let token: string | undefined;
    do {
      const page = await send(chunk, token);
      out.push(...page.items);
      token = page.nextToken;
    } while (token);
  }
  return out;
}

async function subnetsWhere(ec2: EC2Client, name: string, values: string[]): Promise<Subnet[]> {
  return describeAll(values, async (chunk, NextToken) => {
    const Filters: Filter[] = [{ Name: name, Values: chunk }];
    const res = await ec2.send(new DescribeSubnetsCommand({ Filters, NextToken }));
    return { items: res.Subnets ?? [], nextToken: res.NextToken };
  });
}

async function groupsWhere(ec2: EC2Client, name: string, values: string[]): Promise<SecurityGroup[]> {
  return describeAll(values, async (chunk, NextToken) => {
    const Filters: Filter[] = [{ Name: name, Values: chunk }];
    const res = await ec2.send(new DescribeSecurityGroupsCommand({ Filters, NextToken }));
    return { items: res.SecurityGroups ?? [], nextToken: res.NextToken };
  });
}

// --- IPv4 arithmetic -----------------------------------------------------------------------------------

export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export const numberToIpv4 = (n: number): string =>
  [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

export function cidrBounds(cidr: string): { first: number; last: number } | undefined {
  const [ip, bits] = cidr.split('/');
  const base = ip === undefined ? undefined : ipv4ToNumber(ip);
  if (base === undefined || bits === undefined || !/^\d+$/.test(bits) || Number(bits) > 32) return undefined;
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(base / size) * size;
  return { first, last: first + size - 1 };
}

/** Why an address cannot be an instance's in this subnet (undefined: it can). */
export function addressProblem(ip: string, subnet: { id: string; cidr: string }): string | undefined {
  const n = ipv4ToNumber(ip);
  const bounds = cidrBounds(subnet.cidr);
  if (n === undefined || !bounds) return undefined; // a malformed address is the offline rules' to report
  const usable = `${numberToIpv4(bounds.first + 4)}-${numberToIpv4(bounds.last - 1)}`;
  if (n < bounds.first || n > bounds.last)
    return `private IP ${ip} is outside subnet ${subnet.id} (${subnet.cidr}): use an address in ${usable}`;
  if (n < bounds.first + 4)
    return `private IP ${ip} is one of the first four addresses of ${subnet.cidr}, which AWS reserves in every subnet: use an address in ${usable}`;
  if (n === bounds.last)
    return `private IP ${ip} is the last address of ${subnet.cidr}, which AWS reserves in every subnet: use an address in ${usable}`;
  return undefined;
}

// --- the checks ----------------------------------------------------------------------------------------

const unique = (values: Array<string | undefined>): string[] =>
  [...new Set(values.filter((v): v is string => v !== undefined && v !== ''))].sort();

interface Placement {
  subnet?: Subnet;
  /** How the subnet was chosen, for messages: the row's, or the zone's default. */
  why: string;
}

export async function checkNetwork(ec2: EC2Client, region: string, rows: OnlineRow[]): Promise<OnlineProblem[]> {
  const problems: OnlineProblem[] = [];
  const zoneNames = unique(rows.map((r) => r.spec.availabilityZone));
  const zones =
    zoneNames.length === 0
      ? new Set<string>()
      : new Set(
          ((await ec2.send(new DescribeAvailabilityZonesCommand({}))).AvailabilityZones ?? []).map(
            (z) => z.ZoneName ?? ''
          )
        );
  const subnetIds = unique(rows.map((r) => r.spec.subnetId));
  const subnets = new Map((await subnetsWhere(ec2, 'subnet-id', subnetIds)).map((s) => [s.SubnetId ?? '', s]));
  // Rows without a subnet land in a default subnet; asked only when such a row needs it.
  const needsDefault = rows.some((r) => !r.spec.subnetId && (r.spec.privateIp || r.spec.securityGroups.length > 0));
  const defaults = needsDefault ? await subnetsWhere(ec2, 'default-for-az', ['true']) : [];
  const groupIds = unique(rows.flatMap((r) => r.spec.securityGroups.filter((g) => g.startsWith('sg-'))));
  const groupNames = unique(rows.flatMap((r) => r.spec.securityGroups.filter((g) => !g.startsWith('sg-'))));
  const byId = new Map((await groupsWhere(ec2, 'group-id', groupIds)).map((g) => [g.GroupId ?? '', g]));
  const named = await groupsWhere(ec2, 'group-name', groupNames);

  for (const { line, spec } of rows) {
    const add = (column: string, message: string): void => void problems.push({ line, column, message });
    const zoneKnown = !spec.availabilityZone || zones.has(spec.availabilityZone);
    if (!zoneKnown)
      add(
        'availability_zone',
        `availability zone ${spec.availabilityZone} does not exist in ${region} (zones: ${[...zones].sort().join(', ') || 'none listed'}): use one of them, or leave it empty`
      );
    let placement: Placement;
    if (spec.subnetId) {
      const subnet = subnets.get(spec.subnetId);
      placement = { subnet, why: `subnet ${spec.subnetId}` };
      if (!subnet)
        add(
          'subnet_id',
          `subnet ${spec.subnetId} does not exist in ${region}: check the ID, and that AWS_REGION is the subnet's Region`
        );
      else if (spec.availabilityZone && zoneKnown && subnet.AvailabilityZone !== spec.availabilityZone)
        add(
          'availability_zone',
          `subnet ${spec.subnetId} is in ${subnet.AvailabilityZone}, not ${spec.availabilityZone}: set availability_zone to ${subnet.AvailabilityZone} or leave it empty`
        );
    } else {
      const subnet = spec.availabilityZone
        ? defaults.find((s) => s.AvailabilityZone === spec.availabilityZone)
        : defaults.length === 1
          ? defaults[0]
          : undefined;
      placement = { subnet, why: `the default subnet of ${subnet?.AvailabilityZone ?? 'its zone'}` };
      if (!subnet && needsDefault && (spec.privateIp || spec.securityGroups.length > 0) && zoneKnown)
        add(
          'subnet_id',
          spec.availabilityZone
            ? `no default subnet in ${spec.availabilityZone} to place the instance in: set subnet_id`
            : `no subnet_id: EC2 would pick a default subnet, and the private IP or security groups depend on which: set subnet_id`
        );
    }
    const vpcId = placement.subnet?.VpcId;
    for (const g of spec.securityGroups) {
      if (g.startsWith('sg-')) {
        const group = byId.get(g);
        if (!group) add('security_groups', `security group ${g} does not exist in ${region}: check the ID`);
        else if (vpcId && group.VpcId !== vpcId)
          add(
            'security_groups',
            `security group ${g} is in ${group.VpcId}, but ${placement.why} is in ${vpcId}: use a group of ${vpcId}`
          );
      } else if (vpcId && !named.some((n) => n.GroupName === g && n.VpcId === vpcId)) {
        const elsewhere = named.filter((n) => n.GroupName === g).map((n) => `${n.GroupId} in ${n.VpcId}`);
        add(
          'security_groups',
          `no security group named "${g}" in ${vpcId} (${placement.why}'s VPC)${elsewhere.length ? `; found ${elsewhere.join(', ')}` : ''}: create it there or name a group of ${vpcId}`
        );
      } else if (!vpcId && !named.some((n) => n.GroupName === g)) {
        add('security_groups', `no security group named "${g}" in ${region}: check the name`);
      }
    }
    if (spec.privateIp && placement.subnet?.CidrBlock) {
      const why = addressProblem(spec.privateIp, {
        id: placement.subnet.SubnetId ?? '',
        cidr: placement.subnet.CidrBlock,
      });
      if (why) add('private_ip', why);
    }
  }
  return problems;
}
