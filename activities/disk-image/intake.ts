/**
 * What pre-flight adds for the containers EC2 does not take as they are: the conversion plan (qemu-img's
 * format and the scratch space the converted file needs) or, for an OVA, where its disk lies and what its
 * OVF says. Either way the file uploaded is a stream-optimized VMDK.
 */
import type { PreflightResult } from '../../common/contracts/activity-io';
import type { ImportFormat } from '../../common/contracts/migration';
import { IMPORT_FORMATS } from '../../common/contracts/migration';
import type { ImageInfo, InspectOptions } from './limits';
import { qemuDataBytes } from './qemu-img';

type Intake = Pick<PreflightResult, 'format'> &
  Partial<Pick<PreflightResult, 'sourceFormat' | 'conversion' | 'imageOffset' | 'containerBytes' | 'ovf'>>;

/**
 * The most a stream-optimized VMDK of `dataBytes` of data on a `virtualBytes` disk takes: every grain of
 * data stored (deflate never grows a 64 KiB grain by more than a few bytes), a 512-byte-aligned marker per
 * grain (under 1/128 of the data), a grain table (2 KiB and its marker) per 32 MiB of disk, and 1 MiB of
 * headers and directory.
 */
export function scratchBytesFor(dataBytes: number, virtualBytes: number): number {
  const grains = Math.ceil(dataBytes / 65536);
  const tables = Math.ceil(virtualBytes / (32 * 1024 * 1024));
  return dataBytes + grains * 1024 + tables * 2560 + 1024 * 1024;
}

export async function intakeOf(info: ImageInfo & { realPath: string }, opts: InspectOptions): Promise<Intake> {
  if (info.format === 'OVA') {
    return {
      format: 'VMDK',
      sourceFormat: 'OVA',
      imageOffset: info.imageOffset,
      containerBytes: info.containerBytes,
      ovf: info.ovf,
    };
  }
  if (!info.conversion) {
    if (!(IMPORT_FORMATS as readonly string[]).includes(info.format))
      throw new Error(`${info.format} detected without a conversion plan`); // a bug in detection
    return { format: info.format as ImportFormat };
  }
  const { qemuFormat } = info.conversion;
  const qemuImg = opts.qemuImg || 'qemu-img';
  // qemu-img missing or failing: the whole virtual size is the bound (a conversion never writes more).
  const data = (await qemuDataBytes(qemuImg, info.realPath, qemuFormat)) ?? info.virtualBytes;
  return {
    format: 'VMDK',
    sourceFormat: info.format,
    conversion: { qemuFormat, scratchBytes: scratchBytesFor(Math.min(data, info.virtualBytes), info.virtualBytes) },
  };
}
