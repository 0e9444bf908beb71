/**
 * Pre-flight of a VM's data disks: each one a file EC2 takes as it is (stream-optimized VMDK, VHD, RAW), a
 * file the site worker converts first (qcow2, VHDX, sparse or flat VMDK: the plan says how much scratch
 * space it needs), or one disk of the VM's OVA, found by its place in the OVF and uploaded from its byte
 * range. No guest
 * inspection: a data disk is never booted. Every message names the disk (1 = the first data disk) and the
 * file, so the operator knows which cell of the row to fix.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { DataDiskPreflight, DataDiskPreflightInput, DataDiskRef } from '../common/contracts/data-disks';
import { dataDiskSource } from '../common/contracts/data-disks';
import { FailureType } from '../common/failures';
import { openImage } from './disk-image/image-file';
import type { InspectOptions } from './disk-image/limits';
import { preflight, volumeSizeGib } from './disk-image/preflight';
import { inspectOva } from './ova/ova';

/** The same failure, its message prefixed with which data disk it is about. */
function aboutDisk(err: unknown, disk: number, ref: DataDiskRef): unknown {
  if (!(err instanceof ApplicationFailure)) return err;
  return ApplicationFailure.create({
    message: `data disk ${disk} (${dataDiskSource(ref)}): ${err.message}`,
    type: err.type ?? undefined,
    nonRetryable: err.nonRetryable ?? undefined,
    details: err.details as unknown[] | undefined,
  });
}

async function inspectOvaDisk(ref: DataDiskRef & { ovaDisk: number }, opts: InspectOptions) {
  const image = await openImage(ref.image, opts.imageRoots ?? []);
  try {
    const info = await inspectOva(image.handle, image.size, ref.image, ref.ovaDisk);
    return { info, identity: image.identity };
  } finally {
    await image.handle.close();
  }
}

export async function preflightDataDisk(
  input: DataDiskPreflightInput,
  opts: InspectOptions = {}
): Promise<DataDiskPreflight> {
  const { ref, disk } = input;
  try {
    if (ref.ovaDisk !== undefined) {
      const { info, identity } = await inspectOvaDisk({ ...ref, ovaDisk: ref.ovaDisk }, opts);
      return {
        ref,
        disk,
        format: 'VMDK',
        kind: info.kind,
        imageBytes: info.imageBytes,
        virtualBytes: info.virtualBytes,
        volumeSizeGib: volumeSizeGib(info.virtualBytes, undefined, dataDiskSource(ref)),
        imageIdentity: identity,
        imageOffset: info.imageOffset,
        containerBytes: info.containerBytes,
      };
    }
    const found = await preflight({ image: ref.image }, opts);
    if (found.sourceFormat === 'OVA') {
      throw ApplicationFailure.nonRetryable(
        'an OVA cannot be a data disk. Name the OVA alone in the image cell: its data disks come from its OVF.',
        FailureType.ImageFormatUnsupported
      );
    }
    return {
      ref,
      disk,
      format: found.format,
      kind: found.kind,
      imageBytes: found.imageBytes,
      virtualBytes: found.virtualBytes,
      volumeSizeGib: found.volumeSizeGib,
      imageIdentity: found.imageIdentity,
      // qcow2, VHDX, sparse or flat VMDK: converted on the site worker first, as the boot disk is.
      ...(found.conversion ? { sourceFormat: found.sourceFormat, conversion: found.conversion } : {}),
    };
  } catch (err) {
    throw aboutDisk(err, disk, ref);
  }
}
