/**
 * qemu-img: the virtual-size cross-check of the formats pre-flight reads itself, and what it cannot read
 * itself for the formats the site worker converts (a VHDX's size and parent, the data a conversion writes).
 */
import { execFile } from 'node:child_process';
import type { DiskFormat } from '../../common/contracts/migration';

// qemu-img cross-check (optional)

/** qemu's driver name for each container (OVA: its disk is a VMDK at an offset, never read by qemu here). */
export const QEMU_FORMAT: Record<DiskFormat, string> = {
  VMDK: 'vmdk',
  VHD: 'vpc',
  RAW: 'raw',
  QCOW2: 'qcow2',
  VHDX: 'vhdx',
  OVA: 'vmdk',
};

/** Runs qemu-img and parses its JSON answer; undefined when qemu-img is missing or cannot read the file. */
function qemuJson(qemuImg: string, args: string[]): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    execFile(qemuImg, args, { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => {
      if (err) return resolve(undefined);
      try {
        const parsed: unknown = JSON.parse(stdout);
        resolve(typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

export interface QemuInfo {
  virtualBytes: number;
  /** A differencing image's parent, as the image names it. */
  backingFile?: string;
}

/** `qemu-img info` of a file read as `qemuFormat` (-U: the file may be open elsewhere, read-only here). */
export async function qemuInfo(qemuImg: string, file: string, qemuFormat: string): Promise<QemuInfo | undefined> {
  const info = await qemuJson(qemuImg, ['info', '-U', '-f', qemuFormat, '--output=json', file]);
  const size = info?.['virtual-size'];
  if (typeof size !== 'number') return undefined;
  const backing = info?.['backing-filename'] ?? info?.['full-backing-filename'];
  return { virtualBytes: size, backingFile: typeof backing === 'string' ? backing : undefined };
}

/** `qemu-img info`'s virtual size, or undefined when qemu-img is missing or cannot read the file. */
export async function qemuVirtualSize(qemuImg: string, file: string, format: DiskFormat): Promise<number | undefined> {
  return (await qemuInfo(qemuImg, file, QEMU_FORMAT[format]))?.virtualBytes;
}

/**
 * The bytes of data a conversion of `file` has to write: `qemu-img measure`'s "required" size for a qcow2
 * target (its vmdk driver measures nothing), which counts every allocated cluster of the source plus a
 * little metadata. A stream-optimized VMDK holds the same data compressed, plus a marker per grain; the
 * caller adds room for that. Drivers that cannot tell allocated from unallocated (vhdx) report the full
 * virtual size: an overestimate, never an underestimate.
 */
export async function qemuDataBytes(qemuImg: string, file: string, qemuFormat: string): Promise<number | undefined> {
  const measured = await qemuJson(qemuImg, ['measure', '-U', '-f', qemuFormat, '-O', 'qcow2', '--output=json', file]);
  const required = measured?.required;
  return typeof required === 'number' ? required : undefined;
}
