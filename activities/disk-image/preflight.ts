/**
 * Pre-flight of a disk image: is it a file VM Import can take (stream-optimized VMDK, fixed or dynamic
 * VHD, RAW), is it complete, how big is the disk inside it. Reads the first and last sectors itself (and
 * the VMDK grain tables / VHD block table to catch truncation); `qemu-img info` is only a cross-check.
 * Every rejection names the command that fixes the image.
 */
import { ApplicationFailure } from '@temporalio/common';
import { activityLog } from '../activity-context';
import { FailureType } from '../../common/failures';
import type { VmSpec } from '../../common/contracts/migration';
import type { PreflightResult } from '../../common/contracts/activity-io';
import type { FileIdentity } from './image-file';
import { openImage } from './image-file';
import type { ImageInfo, InspectOptions } from './limits';
import { GiB, MAX_IMPORT_BYTES, MIN_VOLUME_GIB } from './limits';
import type { ExpectedFormat } from './rejections';
import { formatFromName, gib, tooLarge } from './rejections';
import { detectFormat } from './detect';
import { qemuVirtualSize } from './qemu-img';
import { guestRefusalText, inspectRow, launchRefusalText, launchRefusals } from '../guest/row-checks';
import { intakeOf } from './intake';

export async function inspectImage(
  file: string,
  opts: InspectOptions = {}
): Promise<ImageInfo & { identity: FileIdentity; realPath: string }> {
  const image = await openImage(file, opts.imageRoots ?? [], opts.expect);
  const expected: ExpectedFormat | undefined = opts.declaredFormat
    ? { format: opts.declaredFormat, source: 'inventory' }
    : formatFromName(file);
  let info: ImageInfo;
  try {
    info = await detectFormat(image.handle, image.size, file, expected, {
      realPath: image.realPath,
      imageRoots: opts.imageRoots ?? [],
      qemuImg: opts.qemuImg || undefined,
    });
  } finally {
    await image.handle.close();
  }
  const qemuImg = opts.qemuImg ?? 'qemu-img';
  // A RAW disk's virtual size is its length: qemu-img could only repeat it (and a spawn per VM is not free).
  // (An OVA's disk lies inside the tar and a VHDX's size came from qemu-img: nothing to cross-check.)
  if (qemuImg !== false && info.format !== 'RAW' && info.format !== 'OVA' && info.format !== 'VHDX') {
    const qemuSize = await qemuVirtualSize(qemuImg, image.realPath, info.format);
    if (qemuSize !== undefined && qemuSize !== info.virtualBytes) {
      activityLog.warn('qemu-img reports a different virtual size; using the larger', {
        image: file,
        header: info.virtualBytes,
        qemuImg: qemuSize,
      });
      info = { ...info, virtualBytes: Math.max(info.virtualBytes, qemuSize) };
    }
  }
  // Also after the cross-check: a RAW file's length, or qemu-img's reading of a header, can be the one too large.
  if (info.virtualBytes > MAX_IMPORT_BYTES)
    throw tooLarge(file, `the ${info.kind} is ${gib(info.virtualBytes)}`, info.format !== 'RAW');
  return { ...info, identity: image.identity, realPath: image.realPath };
}

/** Volume.Size: the inventory's value (never smaller than the disk), else ceil(virtual GiB), at least 8. */
export function volumeSizeGib(virtualBytes: number, requested: number | undefined, file: string): number {
  const needed = Math.ceil(virtualBytes / GiB);
  if (requested === undefined) return Math.max(MIN_VOLUME_GIB, needed);
  if (requested < needed) {
    throw ApplicationFailure.nonRetryable(
      `volumeSizeGib ${requested} is smaller than the ${needed} GiB disk in ${file}. Set volumeSizeGib to at least ${needed}, or leave it empty.`,
      FailureType.InvalidVolumeSize
    );
  }
  return requested;
}

/** What pre-flight reads of a VM's row: the image, its declared format and the volume size asked for. */
export type PreflightSpec = Pick<VmSpec, 'image' | 'format' | 'volumeSizeGib'>;

/**
 * The pre-flight activity: the image (preflight below), then what ImportInstance would refuse of the row
 * (its launch rules, now with the disk's virtual size) and of the guest (the look inside it), whatever the
 * CLI's validate saw. A refusal is final (non-retryable) and comes before any upload; a warning rides on
 * the result into the VM's status.
 */
export async function preflightVm(spec: VmSpec, opts: InspectOptions = {}): Promise<PreflightResult> {
  const result = await preflight(spec, opts);
  const launch = launchRefusals(spec, result.virtualBytes);
  if (launch.length > 0)
    throw ApplicationFailure.nonRetryable(
      `ImportInstance would refuse this row: ${launch.map(launchRefusalText).join(' ')}`,
      FailureType.LaunchRuleViolated
    );
  // The container as found (an OVA is read in place, a QCOW2 or VHDX after its conversion), not the VMDK uploaded.
  const found = result.sourceFormat ?? result.format;
  const inspection = await inspectRow({ ...spec, format: found }, { imageRoots: opts.imageRoots });
  if (inspection.verdict === 'refuse')
    throw ApplicationFailure.nonRetryable(guestRefusalText(inspection), FailureType.GuestRefused, inspection);
  if (inspection.verdict === 'warn') activityLog.warn('guest inspection: warnings', { image: spec.image, inspection });
  return { ...result, inspection };
}

export async function preflight(spec: PreflightSpec, opts: InspectOptions = {}): Promise<PreflightResult> {
  const info = await inspectImage(spec.image, { ...opts, declaredFormat: spec.format });
  if (spec.format !== undefined && spec.format !== info.format) {
    throw ApplicationFailure.nonRetryable(
      `Disk image ${spec.image} is declared as ${spec.format} in the inventory but is a ${info.kind}. Set format to ${info.format} (or leave it empty to detect it).`,
      FailureType.ImageFormatMismatch
    );
  }
  const volume = volumeSizeGib(info.virtualBytes, spec.volumeSizeGib, spec.image);
  return {
    kind: info.kind,
    imageBytes: info.imageBytes,
    virtualBytes: info.virtualBytes,
    volumeSizeGib: volume,
    // The upload refuses any other file than the one read here.
    imageIdentity: info.identity,
    // Converted or unpacked on the site worker: what is uploaded is a stream-optimized VMDK.
    ...(await intakeOf(info, opts)),
  };
}
