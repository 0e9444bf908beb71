/**
 * VHDX (Hyper-V): its virtual size and parent live in a metadata region qemu-img already reads, so
 * pre-flight asks qemu-img (which the site worker needs anyway to convert it). A differencing VHDX holds
 * only changes over its parent: refused.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../common/failures';
import type { ImageInfo } from './limits';
import { MAX_IMPORT_BYTES } from './limits';
import { REEXPORT, damaged, gib, tooLarge, unsupported } from './rejections';
import { qemuInfo } from './qemu-img';

export async function inspectVhdx(qemuImg: string, realPath: string, size: number, file: string): Promise<ImageInfo> {
  const info = await qemuInfo(qemuImg, realPath, 'vhdx');
  if (info === undefined) {
    // Either qemu-img is missing (then nothing here can convert it) or it cannot read the file.
    const present = await qemuInfo(qemuImg, '/dev/null', 'raw');
    if (present === undefined) {
      throw ApplicationFailure.nonRetryable(
        `Disk image ${file} is a VHDX image, which the worker converts with qemu-img, but qemu-img (${qemuImg}) cannot be run here. Install qemu-img (Debian/Ubuntu: qemu-utils) on the worker that reads the images.`,
        FailureType.ImageFormatUnsupported
      );
    }
    throw damaged(file, 'qemu-img cannot read it as a VHDX image', REEXPORT);
  }
  if (info.backingFile !== undefined) {
    throw unsupported(
      file,
      `a differencing VHDX on the parent ${info.backingFile}: only its changes are in this file`,
      'merge it into its parent in Hyper-V (Edit Disk → Merge) or export the VM again'
    );
  }
  if (info.virtualBytes > MAX_IMPORT_BYTES)
    throw tooLarge(file, `its VHDX metadata declares a ${gib(info.virtualBytes)} disk`, true);
  return {
    format: 'VHDX',
    kind: 'VHDX image',
    imageBytes: size,
    virtualBytes: info.virtualBytes,
    conversion: { qemuFormat: 'vhdx' },
  };
}
