/**
 * What EC2 accepts in an ImportInstance launch specification: formats, architectures, platforms, shutdown
 * behaviours (the API reference's valid values) and instance types (sim/data/instance-types.json: Linux
 * only on the types the VM Import guide lists, Windows on "most").
 */
import { Ec2Error } from '../model/errors';
import instanceTypes from '../data/instance-types.json';

export const FORMATS = ['VMDK', 'RAW', 'VHD'];
/** The API reference lists i386 | x86_64 | arm64 (and the _mac variants); ImportInstance imports x86 only. */
export const ARCHITECTURES = ['i386', 'x86_64'];
/** The model's enum is Windows only; Linux imports were sent as Platform=Linux by EC2's own CLI tools. */
export const PLATFORMS = ['Windows', 'Linux'];
export const SHUTDOWN_BEHAVIORS = ['stop', 'terminate'];

export const LINUX_INSTANCE_TYPES: ReadonlySet<string> = new Set(instanceTypes.linux.types);
export const WINDOWS_INSTANCE_TYPES: ReadonlySet<string> = new Set(instanceTypes.windows.types);

export function oneOf(name: string, value: string | undefined, allowed: string[]): void {
  if (value !== undefined && !allowed.includes(value)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${value}) for parameter ${name} is invalid. Valid values: ${allowed.join(', ')}`
    );
  }
}

export function checkInstanceType(instanceType: string, platform: string): void {
  if (platform === 'Linux') {
    if (!LINUX_INSTANCE_TYPES.has(instanceType)) {
      // The message the VM Import guide's troubleshooting page quotes for this case.
      throw new Ec2Error('InvalidParameterValue', 'Linux is not supported on the requested instance');
    }
  } else if (!WINDOWS_INSTANCE_TYPES.has(instanceType)) {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
  }
}
