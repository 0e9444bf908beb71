/**
 * DescribeSubnets, DescribeSecurityGroups and DescribeAvailabilityZones over the network in the state
 * (`POST /_sim/network`), or the Region's default network when none was seeded. Parameters, response
 * elements and errors: sim/README.md, "Network (DescribeSubnets, DescribeSecurityGroups,
 * DescribeAvailabilityZones)".
 */
import { Ec2Error } from '../../model/errors';
import type { NetworkState, SecurityGroup, Subnet } from '../../model/network-state';
import { cidrRange } from '../../model/network-state';
import { items } from '../xml';
import type { ActionContext, ActionHandler } from './context';
import { dryRunGate } from './context';
import { passes } from './instances';
import { defaultVpcId, hex17 } from './network';

/** The account the simulator answers for (as DescribeInstances' ownerId). */
const OWNER_ID = '000000000000';

/** `us-east-1` → `use1`: the prefix of the Region's zone IDs (`use1-az1`), as EC2 names them. */
export function zoneIdPrefix(region: string): string {
  const [area = '', direction = '', n = ''] = region.split('-');
  return `${area}${direction.charAt(0)}${n}`;
}

/**
 * The Region's default network: three zones (a, b, c), the default VPC 172.31.0.0/16 with a /20 default
 * subnet per zone and its `default` security group (VPC User Guide, "Default VPCs"), plus the network the
 * examples' inventory names (subnet-0a1b2c3d in zone a and subnet-0e5f6a7b in zone b, with groups web, ssh,
 * api, rdp, db, cache, sql and mq), so the demo validates online as it stands. IDs are derived as actions/network.ts derives them for instances.
 */
export function defaultNetwork(region: string): NetworkState {
  const zones = ['a', 'b', 'c'].map((letter) => `${region}${letter}`);
  const vpcId = defaultVpcId(region);
  const group = (groupName: string, description: string): SecurityGroup => ({
    groupId: `sg-${hex17(`sg:${vpcId}:${groupName}`)}`,
    groupName,
    vpcId,
    description,
  });
  return {
    zones,
    vpcs: [{ vpcId, cidrBlock: '172.31.0.0/16', isDefault: true }],
    subnets: [
      ...zones.map((zone, i) => ({
        subnetId: `subnet-${hex17(`subnet:${zone}`)}`,
        vpcId,
        cidrBlock: `172.31.${i * 16}.0/20`,
        availabilityZone: zone,
        defaultForAz: true,
      })),
      {
        subnetId: 'subnet-0a1b2c3d',
        vpcId,
        cidrBlock: '172.31.96.0/20',
        availabilityZone: zones[0]!,
        defaultForAz: false,
      },
      {
        subnetId: 'subnet-0e5f6a7b',
        vpcId,
        cidrBlock: '172.31.112.0/20',
        availabilityZone: zones[1]!,
        defaultForAz: false,
      },
    ],
    securityGroups: [
      group('default', 'default VPC security group'),
      group('web', 'examples: web servers'),
      group('ssh', 'examples: ssh'),
      group('api', 'examples: order API'),
      group('rdp', 'examples: remote desktop'),
      group('db', 'examples: databases'),
      group('cache', 'examples: cache'),
      group('sql', 'examples: SQL Server'),
      group('mq', 'examples: message queue'),
    ],
  };
}

export function networkOf(ctx: Pick<ActionContext, 'model' | 'region'>): NetworkState {
  return ctx.model.state.network ?? defaultNetwork(ctx.region);
}

/** MaxResults/NextToken: the token is the offset of the next item (the simulator's own encoding). */
function page<T>(ctx: ActionContext, all: T[]): { items: T[]; nextToken?: string } {
  const max = ctx.params.int('MaxResults');
  if (max !== undefined && (max < 5 || max > 1000))
    throw new Ec2Error('InvalidParameterValue', `Value (${max}) for parameter MaxResults is invalid. Expected 5-1000.`);
  const token = ctx.params.get('NextToken');
  const start = token === undefined ? 0 : Number(token);
  if (!Number.isInteger(start) || start < 0 || start > all.length)
    throw new Ec2Error('InvalidParameterValue', `Invalid NextToken: ${token}`);
  const end = max === undefined ? all.length : Math.min(all.length, start + max);
  return { items: all.slice(start, end), nextToken: end < all.length ? String(end) : undefined };
}

function subnetFields(s: Subnet): (name: string) => string[] | undefined {
  return (name) => {
    const map: Record<string, string[]> = {
      'subnet-id': [s.subnetId],
      'vpc-id': [s.vpcId],
      'availability-zone': [s.availabilityZone],
      availabilityZone: [s.availabilityZone],
      'cidr-block': [s.cidrBlock],
      cidr: [s.cidrBlock],
      cidrBlock: [s.cidrBlock],
      'default-for-az': [String(s.defaultForAz)],
      defaultForAz: [String(s.defaultForAz)],
      state: ['available'],
    };
    return map[name];
  };
}

const describeSubnets: ActionHandler = (ctx) => {
  const network = networkOf(ctx);
  const ids = ctx.params.list('SubnetId');
  for (const id of ids) {
    if (!/^subnet-[0-9a-f]+$/.test(id)) throw new Ec2Error('InvalidSubnetID.Malformed', `Invalid subnet ID '${id}'`);
    if (!network.subnets.some((s) => s.subnetId === id))
      throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
  }
  dryRunGate(ctx);
  const filters = ctx.params.filters();
  const chosen = network.subnets.filter(
    (s) => (ids.length === 0 || ids.includes(s.subnetId)) && passes(filters, subnetFields(s))
  );
  const { items: shown, nextToken } = page(ctx, chosen);
  const zoneIds = new Map(network.zones.map((z, i) => [z, `${zoneIdPrefix(ctx.region)}-az${i + 1}`]));
  return {
    subnetSet: items(
      shown.map((s) => {
        const { first, last } = cidrRange(s.cidrBlock);
        return {
          subnetId: s.subnetId,
          subnetArn: `arn:aws:ec2:${ctx.region}:${OWNER_ID}:subnet/${s.subnetId}`,
          state: 'available',
          ownerId: OWNER_ID,
          vpcId: s.vpcId,
          cidrBlock: s.cidrBlock,
          // The first four and the last address are AWS's (API reference, CreateSubnet).
          availableIpAddressCount: Math.max(0, last - first + 1 - 5),
          availabilityZone: s.availabilityZone,
          availabilityZoneId: zoneIds.get(s.availabilityZone),
          defaultForAz: s.defaultForAz,
          mapPublicIpOnLaunch: s.defaultForAz,
          assignIpv6AddressOnCreation: false,
        };
      })
    ),
    ...(nextToken ? { nextToken } : {}),
  };
};

function groupFields(g: SecurityGroup): (name: string) => string[] | undefined {
  return (name) => {
    const map: Record<string, string[]> = {
      'group-id': [g.groupId],
      'group-name': [g.groupName],
      'vpc-id': [g.vpcId],
      description: [g.description],
      'owner-id': [OWNER_ID],
    };
    return map[name];
  };
}

const describeSecurityGroups: ActionHandler = (ctx) => {
  const network = networkOf(ctx);
  const ids = ctx.params.list('GroupId');
  const names = ctx.params.list('GroupName');
  for (const id of ids)
    if (!network.securityGroups.some((g) => g.groupId === id))
      throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
  // GroupName.N looks in the default VPC only (the model's "[Default VPC]"; aws/aws-cli#612).
  const defaultVpc = network.vpcs.find((v) => v.isDefault);
  for (const name of names) {
    if (!defaultVpc)
      throw new Ec2Error(
        'VPCIdNotSpecified',
        'No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.'
      );
    if (!network.securityGroups.some((g) => g.groupName === name && g.vpcId === defaultVpc.vpcId))
      throw new Ec2Error(
        'InvalidGroup.NotFound',
        `The security group '${name}' does not exist in default VPC '${defaultVpc.vpcId}'`
      );
  }
  dryRunGate(ctx);
  const filters = ctx.params.filters();
  const chosen = network.securityGroups.filter((g) => {
    const byId = ids.includes(g.groupId);
    const byName = defaultVpc !== undefined && g.vpcId === defaultVpc.vpcId && names.includes(g.groupName);
    return (ids.length + names.length === 0 || byId || byName) && passes(filters, groupFields(g));
  });
  const { items: shown, nextToken } = page(ctx, chosen);
  return {
    securityGroupInfo: items(
      shown.map((g) => ({
        ownerId: OWNER_ID,
        groupId: g.groupId,
        groupName: g.groupName,
        groupDescription: g.description,
        vpcId: g.vpcId,
        securityGroupArn: `arn:aws:ec2:${ctx.region}:${OWNER_ID}:security-group/${g.groupId}`,
        ipPermissions: '',
        ipPermissionsEgress: '',
      }))
    ),
    ...(nextToken ? { nextToken } : {}),
  };
};

const describeAvailabilityZones: ActionHandler = (ctx) => {
  const network = networkOf(ctx);
  const names = ctx.params.list('ZoneName');
  const prefix = zoneIdPrefix(ctx.region);
  const zones = network.zones.map((zoneName, i) => ({ zoneName, zoneId: `${prefix}-az${i + 1}` }));
  for (const name of names)
    if (!zones.some((z) => z.zoneName === name))
      throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${name}]`);
  const zoneIds = ctx.params.list('ZoneId');
  for (const id of zoneIds)
    if (!zones.some((z) => z.zoneId === id))
      throw new Ec2Error('InvalidParameterValue', `Invalid availability zone-id: [${id}]`);
  dryRunGate(ctx);
  const filters = ctx.params.filters();
  const chosen = zones.filter(
    (z) =>
      (names.length + zoneIds.length === 0 || names.includes(z.zoneName) || zoneIds.includes(z.zoneId)) &&
      passes(filters, (name) => {
        const map: Record<string, string[]> = {
          'zone-name': [z.zoneName],
          'zone-id': [z.zoneId],
          'region-name': [ctx.region],
          state: ['available'],
          'zone-type': ['availability-zone'],
          'opt-in-status': ['opt-in-not-required'],
        };
        return map[name];
      })
  );
  return {
    availabilityZoneInfo: items(
      chosen.map((z) => ({
        zoneName: z.zoneName,
        zoneState: 'available',
        regionName: ctx.region,
        zoneId: z.zoneId,
        optInStatus: 'opt-in-not-required',
        messageSet: '',
        groupName: ctx.region,
        networkBorderGroup: ctx.region,
        zoneType: 'availability-zone',
      }))
    ),
  };
};

export const vpcActions: Record<string, ActionHandler> = {
  DescribeSubnets: describeSubnets,
  DescribeSecurityGroups: describeSecurityGroups,
  DescribeAvailabilityZones: describeAvailabilityZones,
};
