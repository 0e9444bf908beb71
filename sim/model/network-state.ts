/**
 * The account's network as DescribeSubnets, DescribeSecurityGroups and DescribeAvailabilityZones show it:
 * the Region's zones, VPCs, their subnets (CIDR + zone) and security groups. Plain JSON in the state file;
 * seeded through `POST /_sim/network` (each list given replaces that list), checked for consistency
 * (a subnet's VPC and zone exist, its CIDR lies inside its VPC's, a group's VPC exists) so a test cannot
 * seed a network EC2 could never show. Without a seed the Region's default network (actions/vpc.ts).
 */
import { z } from 'zod';
import { Ec2Error } from './errors';

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const cidr = z.string().refine((v) => {
  const [ip, bits] = v.split('/');
  return ip !== undefined && ipv4.test(ip) && bits !== undefined && /^\d+$/.test(bits) && Number(bits) <= 32;
}, 'an IPv4 CIDR block such as 10.0.1.0/24');

export const vpcSchema = z.object({
  vpcId: z.string().regex(/^vpc-[0-9a-f]+$/),
  cidrBlock: cidr,
  isDefault: z.boolean().default(false),
});
export const subnetSchema = z.object({
  subnetId: z.string().regex(/^subnet-[0-9a-f]+$/),
  vpcId: z.string(),
  cidrBlock: cidr,
  availabilityZone: z.string().min(1),
  defaultForAz: z.boolean().default(false),
});
export const securityGroupSchema = z.object({
  groupId: z.string().regex(/^sg-[0-9a-f]+$/),
  groupName: z.string().min(1),
  vpcId: z.string(),
  description: z.string().default(''),
});

export const networkPatchSchema = z
  .object({
    zones: z.array(z.string().min(1)),
    vpcs: z.array(vpcSchema),
    subnets: z.array(subnetSchema),
    securityGroups: z.array(securityGroupSchema),
  })
  .partial()
  .strict();

export type Vpc = z.output<typeof vpcSchema>;
export type Subnet = z.output<typeof subnetSchema>;
export type SecurityGroup = z.output<typeof securityGroupSchema>;

export interface NetworkState {
  zones: string[];
  vpcs: Vpc[];
  subnets: Subnet[];
  securityGroups: SecurityGroup[];
}

/** The address as a 32-bit unsigned number. */
export function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** First and last address of a CIDR block, as numbers. */
export function cidrRange(block: string): { first: number; last: number } {
  const [ip, bits] = block.split('/');
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(ipToNumber(ip!) / size) * size;
  return { first, last: first + size - 1 };
}

const inside = (inner: string, outer: string): boolean => {
  const a = cidrRange(inner);
  const b = cidrRange(outer);
  return a.first >= b.first && a.last <= b.last;
};

/** `current` with the patch's lists in place of its own; throws with every inconsistency found. */
export function applyNetworkPatch(current: NetworkState, patch: unknown): NetworkState {
  const parsed = networkPatchSchema.safeParse(patch);
  if (!parsed.success)
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  const next: NetworkState = { ...current, ...parsed.data };
  const problems: string[] = [];
  const vpcs = new Map(next.vpcs.map((v) => [v.vpcId, v]));
  for (const s of next.subnets) {
    const vpc = vpcs.get(s.vpcId);
    if (!vpc) problems.push(`subnet ${s.subnetId}: no VPC ${s.vpcId}`);
    else if (!inside(s.cidrBlock, vpc.cidrBlock))
      problems.push(`subnet ${s.subnetId}: ${s.cidrBlock} is not inside ${vpc.vpcId}'s ${vpc.cidrBlock}`);
    if (!next.zones.includes(s.availabilityZone))
      problems.push(`subnet ${s.subnetId}: no zone ${s.availabilityZone} (zones: ${next.zones.join(', ')})`);
  }
  for (const g of next.securityGroups)
    if (!vpcs.has(g.vpcId)) problems.push(`security group ${g.groupId}: no VPC ${g.vpcId}`);
  const dup = (ids: string[]): string[] => ids.filter((id, i) => ids.indexOf(id) !== i);
  for (const id of dup([...next.vpcs.map((v) => v.vpcId), ...next.subnets.map((s) => s.subnetId)]))
    problems.push(`${id} appears twice`);
  for (const id of dup(next.securityGroups.map((g) => g.groupId))) problems.push(`${id} appears twice`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return next;
}

/**
 * ImportInstance's launch network against the account's: the subnet exists (`InvalidSubnetID.NotFound`),
 * each group ID exists (`InvalidGroup.NotFound`) and, with a subnet, lies in the subnet's VPC; each group
 * name exists in the subnet's VPC, or without a subnet in the default VPC. The codes are EC2's for
 * RunInstances (sources in sim/README.md, "ImportInstance's network"); that ImportInstance answers the same
 * is the simulator's own reading (the API reference lists no errors per action).
 */
export function launchNetworkError(
  network: NetworkState,
  launch: { subnetId?: string; groupIds: readonly string[]; groupNames: readonly string[] }
): Ec2Error | undefined {
  const subnet = launch.subnetId ? network.subnets.find((s) => s.subnetId === launch.subnetId) : undefined;
  if (launch.subnetId && !subnet)
    return new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${launch.subnetId}' does not exist`);
  const vpcId = subnet?.vpcId ?? network.vpcs.find((v) => v.isDefault)?.vpcId;
  for (const id of launch.groupIds) {
    const group = network.securityGroups.find((g) => g.groupId === id);
    if (!group) return new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    if (subnet && group.vpcId !== subnet.vpcId)
      return new Ec2Error(
        'InvalidGroup.NotFound',
        `The security group '${id}' does not exist in VPC '${subnet.vpcId}'`
      );
  }
  for (const name of launch.groupNames) {
    if (!vpcId)
      return new Ec2Error(
        'VPCIdNotSpecified',
        'No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.'
      );
    if (!network.securityGroups.some((g) => g.groupName === name && g.vpcId === vpcId))
      return new Ec2Error(
        'InvalidGroup.NotFound',
        subnet
          ? `The security group '${name}' does not exist in VPC '${vpcId}'`
          : `The security group '${name}' does not exist in default VPC '${vpcId}'`
      );
  }
  return undefined;
}
