/**
 * OVAs as vSphere exports them, for the tests and the demo: an OVF descriptor written here (the shape vSphere's export has: References,
 * DiskSection, one VirtualSystem with its OS and hardware) and stream-optimized disks made by qemu-img,
 * packed by tar with the descriptor first, as the OVF specification requires.
 */
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface OvaOptions {
  /** Stream-optimized VMDKs to pack, in the OVF's disk order (paths inside `dir`). */
  disks: string[];
  /** vmw:osType, e.g. `ubuntu64Guest`, `windows9Server64Guest`. */
  vmwOsType?: string;
  osDescription?: string;
  cpus?: number;
  memoryMiB?: number;
  /** ovf:compression on the first disk's File (the disk itself is not compressed: for refusal tests). */
  compression?: string;
  /** tar --format (gnu, posix = pax headers, ustar). @default 'gnu' */
  tarFormat?: 'gnu' | 'posix' | 'ustar';
}

export function ovfDescriptor(
  disks: Array<{ href: string; size: number; capacity: number }>,
  opts: Omit<OvaOptions, 'disks'>
): string {
  const files = disks
    .map(
      (d, i) =>
        `    <File ovf:href="${d.href}" ovf:id="file${i + 1}" ovf:size="${d.size}"${i === 0 && opts.compression ? ` ovf:compression="${opts.compression}"` : ''}/>`
    )
    .join('\n');
  const diskLines = disks
    .map(
      (d, i) =>
        `    <Disk ovf:capacity="${d.capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk${i + 1}" ovf:fileRef="file${i + 1}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
${files}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
${diskLines}
  </DiskSection>
  <VirtualSystem ovf:id="testvm">
    <Info>A virtual machine</Info>
    <Name>testvm</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="${opts.vmwOsType ?? 'ubuntu64Guest'}">
      <Info>The kind of installed guest operating system</Info>
      <Description>${opts.osDescription ?? 'Ubuntu Linux (64-bit)'}</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>${opts.cpus ?? 2} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>${opts.cpus ?? 2}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>${opts.memoryMiB ?? 4096}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>${opts.memoryMiB ?? 4096}</rasd:VirtualQuantity>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

async function capacityOf(disk: string): Promise<number> {
  const { stdout } = await execFileAsync(process.env.QEMU_IMG ?? 'qemu-img', ['info', '--output=json', disk]);
  return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'];
}

/** Packs `<dir>/<name>.ova` (descriptor first) and returns its path. */
export async function makeOva(dir: string, name: string, opts: OvaOptions): Promise<string> {
  const disks = await Promise.all(
    opts.disks.map(async (d) => ({ href: path.basename(d), size: (await stat(d)).size, capacity: await capacityOf(d) }))
  );
  const ovf = `${name}.ovf`;
  await writeFile(path.join(dir, ovf), ovfDescriptor(disks, opts));
  const ova = path.join(dir, `${name}.ova`);
  await execFileAsync('tar', [
    `--format=${opts.tarFormat ?? 'gnu'}`,
    '-C',
    dir,
    '-cf',
    ova,
    ovf,
    ...disks.map((d) => d.href),
  ]);
  return ova;
}
