/**
 * What EC2 accepted in an ImportInstance launch specification: formats, architectures, platforms,
 * shutdown behaviours, and instance types — Linux imports only on the types the VM Import guide listed.
 */
import { Ec2Error } from '../model/errors';

export const FORMATS = ['VMDK', 'RAW', 'VHD'];
export const ARCHITECTURES = ['i386', 'x86_64'];
export const PLATFORMS = ['Windows', 'Linux'];
export const SHUTDOWN_BEHAVIORS = ['stop', 'terminate'];

const sizes = (family: string, list: string[]): string[] => list.map((s) => `${family}.${s}`);

/** Types the Linux instance import supported (VM Import guide); anything else: "Linux is not supported…". */
export const LINUX_INSTANCE_TYPES = new Set([
  't2.micro',
  't2.small',
  't2.medium',
  ...sizes('m3', ['medium', 'large', 'xlarge', '2xlarge']),
  ...sizes('c3', ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
  ...sizes('r3', ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
  ...sizes('i2', ['xlarge', '2xlarge', '4xlarge', '8xlarge']),
  'cc1.4xlarge',
  'cc2.8xlarge',
  'cr1.8xlarge',
  'hi1.4xlarge',
  'hi1.8xlarge',
]);

/** Every type the simulator knows (Windows imports accept all of them). */
export const INSTANCE_TYPES = new Set([
  ...LINUX_INSTANCE_TYPES,
  ...sizes('t2', ['nano', 'large', 'xlarge', '2xlarge']),
  ...sizes('t3', ['nano', 'micro', 'small', 'medium', 'large', 'xlarge', '2xlarge']),
  ...sizes('m4', ['large', 'xlarge', '2xlarge', '4xlarge', '10xlarge']),
  ...sizes('m5', ['large', 'xlarge', '2xlarge', '4xlarge', '12xlarge', '24xlarge']),
  ...sizes('c4', ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
  ...sizes('c5', ['large', 'xlarge', '2xlarge', '4xlarge', '9xlarge', '18xlarge']),
  ...sizes('r4', ['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge']),
  ...sizes('r5', ['large', 'xlarge', '2xlarge', '4xlarge', '12xlarge']),
]);

export function oneOf(name: string, value: string | undefined, allowed: string[]): void {
  if (value !== undefined && !allowed.includes(value)) {
    throw new Ec2Error('InvalidParameterValue', `Value (${value}) for parameter ${name} is invalid. Valid values: ${allowed.join(', ')}`);
  }
}

export function checkInstanceType(instanceType: string, platform: string): void {
  if (!INSTANCE_TYPES.has(instanceType)) {
    throw new Ec2Error('InvalidParameterValue', `Value (${instanceType}) for parameter instanceType is invalid. Unknown instance type.`);
  }
  if (platform === 'Linux' && !LINUX_INSTANCE_TYPES.has(instanceType)) {
    throw new Ec2Error('InvalidParameterValue', `Linux is not supported on the requested instance (${instanceType}).`);
  }
}
