/**
 * What an imported instance's network looks like when the launch specification did not say: EC2 puts it in
 * the Region's default VPC (172.31.0.0/16, one default subnet per Availability Zone; "Default VPCs", VPC
 * User Guide), with a private IPv4 address from that subnet and a private DNS name
 * `ip-a-b-c-d.ec2.internal` in us-east-1, `ip-a-b-c-d.REGION.compute.internal` elsewhere ("Amazon EC2
 * instance hostname types", EC2 User Guide). The IDs are the simulator's own: derived from what they belong
 * to, so the same instance always shows the same values without storing them.
 */
import { createHash } from 'node:crypto';
import type { Instance } from '../../model/types';

export const hex17 = (seed: string): string => createHash('sha256').update(seed).digest('hex').slice(0, 17);

export const defaultVpcId = (region: string): string => `vpc-${hex17(`vpc:${region}`)}`;

export const subnetIdOf = (i: Instance): string =>
  i.launch.subnetId ?? `subnet-${hex17(`subnet:${i.launch.availabilityZone}`)}`;

/** The VPC of the instance's subnet: a subnet the caller named is taken to be in a VPC of its own. */
export const vpcIdOf = (i: Instance, region: string): string =>
  i.launch.subnetId ? `vpc-${hex17(`vpc:${i.launch.subnetId}`)}` : defaultVpcId(region);

export function privateIpOf(i: Instance): string {
  if (i.launch.privateIp) return i.launch.privateIp;
  const h = createHash('sha256').update(`ip:${i.instanceId}`).digest();
  return `172.31.${h[0]!}.${(h[1]! % 254) + 1}`;
}

export function privateDnsNameOf(i: Instance, region: string): string {
  const host = `ip-${privateIpOf(i).replace(/\./g, '-')}`;
  return region === 'us-east-1' ? `${host}.ec2.internal` : `${host}.${region}.compute.internal`;
}

/** Security groups as EC2 lists them (ID and name); with none given, the VPC's `default` group. */
export function groupsOf(i: Instance, region: string): Array<{ groupId: string; groupName?: string }> {
  const vpc = vpcIdOf(i, region);
  const named = i.launch.groupNames.map((groupName) => ({
    groupId: `sg-${hex17(`sg:${vpc}:${groupName}`)}`,
    groupName,
  }));
  const byId = i.launch.groupIds.map((groupId) => ({ groupId }));
  const all = [...named, ...byId];
  return all.length > 0 ? all : [{ groupId: `sg-${hex17(`sg:${vpc}:default`)}`, groupName: 'default' }];
}
