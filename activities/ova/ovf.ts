/**
 * An OVF descriptor (DMTF DSP0243, as vSphere, VirtualBox and ovftool write it): its disks in order with
 * their file and capacity, the OS, the CPUs and memory. Namespace prefixes are dropped (ovf:, rasd:, vmw:
 * vary between tools); entities are not expanded (an OVF needs none, and a hostile one cannot grow).
 */
import { XMLParser } from 'fast-xml-parser';

export interface OvfDisk {
  diskId: string;
  /** The archive member holding the disk (its File's href). */
  href: string;
  capacityBytes?: number;
  /** The File's ovf:compression (`gzip`): such a disk is not a VMDK until it is decompressed. */
  compression?: string;
  /** ovf:format, e.g. `...vmdk.html#streamOptimized`. */
  format?: string;
}

export interface OvfDescriptor {
  disks: OvfDisk[];
  osId?: string;
  osDescription?: string;
  /** VMware's guest ID (vmw:osType), e.g. `windows9Server64Guest`, `ubuntu64Guest`. */
  vmwOsType?: string;
  cpus?: number;
  memoryMiB?: number;
}

export class OvfError extends Error {}

type Node = Record<string, unknown>;
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  processEntities: false,
  isArray: (name) => ['File', 'Disk', 'Item', 'VirtualSystem', 'StorageItem'].includes(name),
});

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.trim() : undefined);
const node = (v: unknown): Node | undefined => (typeof v === 'object' && v !== null ? (v as Node) : undefined);
const list = (v: unknown): Node[] => (Array.isArray(v) ? v.map(node).filter((n): n is Node => n !== undefined) : []);
/** An element's text, whether it has attributes (`#text`) or not. */
const textOf = (v: unknown): string | undefined => str(v) ?? str(node(v)?.['#text']);

/** `byte * 2^30`, `byte*1024*1024`, `MegaBytes`: the multiplier of an OVF allocation unit. */
export function unitMultiplier(units: string | undefined): number | undefined {
  if (units === undefined || units === '') return 1;
  const u = units.replace(/\s+/g, '').toLowerCase();
  if (u === 'megabytes' || u === 'mb') return 2 ** 20;
  if (u === 'gigabytes' || u === 'gb') return 2 ** 30;
  const m = /^byte(?:\*(.+))?$/.exec(u);
  if (!m) return undefined;
  let factor = 1;
  for (const term of (m[1] ?? '').split('*').filter(Boolean)) {
    const power = /^(\d+)\^(\d+)$/.exec(term);
    const value = power ? Number(power[1]) ** Number(power[2]) : Number(term);
    if (!Number.isFinite(value) || value <= 0) return undefined;
    factor *= value;
  }
  return factor;
}

function quantity(value: string | undefined, units: string | undefined): number | undefined {
  const n = value === undefined ? NaN : Number(value);
  const factor = unitMultiplier(units);
  return Number.isFinite(n) && n >= 0 && factor !== undefined ? n * factor : undefined;
}

export function parseOvf(xml: string): OvfDescriptor {
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw new OvfError(`the OVF descriptor is not valid XML (${(err as Error).message})`);
  }
  const envelope = node(doc.Envelope);
  if (!envelope) throw new OvfError('the OVF descriptor has no Envelope element');
  const files = new Map<string, Node>();
  for (const f of list(node(envelope.References)?.File)) {
    const id = str(f['@_id']);
    if (id) files.set(id, f);
  }
  const diskSection = node(envelope.DiskSection);
  const disks: OvfDisk[] = [];
  for (const d of list(diskSection?.Disk)) {
    const diskId = str(d['@_diskId']) ?? '';
    const file = files.get(str(d['@_fileRef']) ?? '');
    const href = str(file?.['@_href']);
    if (!href) throw new OvfError(`disk "${diskId}" refers to no file in the OVF's References`);
    disks.push({
      diskId,
      href,
      capacityBytes: quantity(str(d['@_capacity']), str(d['@_capacityAllocationUnits'])),
      compression: str(file?.['@_compression']),
      format: str(d['@_format']),
    });
  }
  // One VM per OVA: a VirtualSystemCollection (a vApp) is several.
  const systems = list(envelope.VirtualSystem);
  if (systems.length === 0 && node(envelope.VirtualSystemCollection))
    throw new OvfError(
      'the OVF describes a vApp (a VirtualSystemCollection of several VMs): export each VM on its own'
    );
  const system = systems[0];
  const os = node(system?.OperatingSystemSection);
  const hardware = node(system?.VirtualHardwareSection);
  const items = [...list(hardware?.Item), ...list(hardware?.StorageItem)];
  const item = (type: string): Node | undefined => items.find((i) => textOf(i.ResourceType) === type);
  const cpu = item('3');
  const memory = item('4');
  const memoryBytes = memory ? quantity(textOf(memory.VirtualQuantity), textOf(memory.AllocationUnits)) : undefined;
  const cpus = cpu ? Number(textOf(cpu.VirtualQuantity)) : undefined;
  return {
    disks,
    osId: str(os?.['@_id']),
    osDescription: textOf(os?.Description),
    vmwOsType: str(os?.['@_osType']),
    cpus: cpus !== undefined && Number.isSafeInteger(cpus) && cpus > 0 ? cpus : undefined,
    memoryMiB: memoryBytes !== undefined && memoryBytes > 0 ? Math.round(memoryBytes / 2 ** 20) : undefined,
  };
}
