/**
 * A Windows system volume: the edition and version from the SOFTWARE hive (Microsoft\Windows NT\
 * CurrentVersion), read through ntfs.ts and regf.ts, and the volume's free space, against VM Import's
 * Windows list and its 6 GiB free-space rule (common/vm-import-rules.ts).
 */
import { MIN_FREE_BYTES, windowsListed } from '../../common/vm-import-rules';
import type { GuestDisk } from './disk-reader';
import { NtfsVolume } from './ntfs';
import type { GuestReason } from './reasons';
import { mib } from './reasons';
import { Hive } from './regf';

export interface WindowsSystem {
  productName?: string;
  editionId?: string;
  /** e.g. `10.0 build 17763`. */
  version?: string;
  servicePack?: string;
  releaseId?: string;
  installationType?: string;
  freeBytes: number;
}

const CURRENT_VERSION = ['Microsoft', 'Windows NT', 'CurrentVersion'];
const HIVE = 'Windows/System32/config/SOFTWARE';

/** The Windows system on an NTFS volume, or undefined when the volume holds no \Windows directory. */
export async function readWindowsSystem(disk: GuestDisk, offset: number): Promise<WindowsSystem | undefined> {
  const volume = await NtfsVolume.open(disk, offset);
  if ((await volume.lookup('Windows')) === undefined) return undefined;
  const freeBytes = await volume.freeBytes();
  const record = await volume.lookup(HIVE);
  if (record === undefined) return { freeBytes };
  const data = await volume.dataOf(record);
  const hive = await Hive.open((at, length) => volume.readAttribute(data, at, length));
  const str = async (name: string): Promise<string | undefined> => {
    const v = await hive.value(CURRENT_VERSION, name);
    return v === undefined ? undefined : String(v);
  };
  const major = await hive.value(CURRENT_VERSION, 'CurrentMajorVersionNumber');
  const minor = await hive.value(CURRENT_VERSION, 'CurrentMinorVersionNumber');
  const build = await str('CurrentBuild');
  const base = major !== undefined ? `${major}.${minor ?? 0}` : await str('CurrentVersion');
  return {
    productName: await str('ProductName'),
    editionId: await str('EditionID'),
    version: base ? `${base}${build ? ` build ${build}` : ''}` : undefined,
    servicePack: await str('CSDVersion'),
    releaseId: await str('ReleaseId'),
    installationType: await str('InstallationType'),
    freeBytes,
  };
}

/** Windows 11 still calls itself "Windows 10" in ProductName; its build number (22000 and later) tells. */
export function effectiveProductName(w: WindowsSystem): string | undefined {
  const build = Number(/build (\d+)/.exec(w.version ?? '')?.[1] ?? 0);
  if (w.productName && /Windows 10/i.test(w.productName) && w.installationType === 'Client' && build >= 22000)
    return w.productName.replace(/Windows 10/i, 'Windows 11');
  return w.productName;
}

export function windowsReasons(w: WindowsSystem, active: boolean): GuestReason[] {
  const out: GuestReason[] = [];
  const product = effectiveProductName(w);
  if (!product)
    out.push({
      rule: 'windows-version',
      severity: 'refuse',
      message:
        'The Windows volume has no readable SOFTWARE registry hive (VM Import would fail with "Unknown OS / Missing OS files").',
      fix: "Check that the image is the VM's system disk and that Windows\\System32\\config\\SOFTWARE is intact.",
    });
  else {
    const verdict = windowsListed({ ...w, productName: product });
    if (!verdict.supported)
      out.push({
        rule: 'windows-version',
        severity: 'refuse',
        message: `${product}: ${verdict.why ?? 'not supported'}.`,
        fix: "Upgrade to a Windows version on VM Import's list, or import with ImportImage where it is supported.",
      });
  }
  if (w.freeBytes < MIN_FREE_BYTES.windows)
    out.push({
      rule: 'free-space',
      severity: 'refuse',
      message: `The Windows system volume has ${mib(w.freeBytes)} free; VM Import needs at least 6 GiB to install drivers.`,
      fix: 'Free space on C: (or extend the volume) so that at least 6 GiB are free, and set a fixed pagefile size.',
    });
  if (!active)
    out.push({
      rule: 'bootable-partition',
      severity: 'refuse',
      message: 'The Windows partition is not marked active (bootable) in the MBR.',
      fix: 'Mark the system partition active (diskpart: select partition, active) before exporting.',
    });
  return out;
}
