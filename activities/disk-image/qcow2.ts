/**
 * qcow2 (KVM, OpenStack): read from its header (big-endian; qemu docs/interop/qcow2.txt) for the virtual
 * size and for what a conversion on this host must not do: follow a backing file (a path the image names,
 * possibly outside the image roots) or read an encrypted image without its key.
 */
import type { FileHandle } from 'node:fs/promises';
import { readAt } from './image-file';
import type { ImageInfo } from './limits';
import { MAX_IMPORT_BYTES } from './limits';
import { REEXPORT, damaged, gib, tooLarge, unsupported } from './rejections';

export const QCOW2_MAGIC = 'QFI\xfb';
/** Header bytes read: through the v3 feature fields. */
const HEADER_BYTES = 104;
/** Incompatible feature bit 1: qemu found the image's metadata corrupt. */
const CORRUPT = 1n << 1n;

export async function inspectQcow2(handle: FileHandle, size: number, file: string): Promise<ImageInfo> {
  const head = await readAt(handle, 0, Math.min(size, HEADER_BYTES));
  if (head.length < 72) throw damaged(file, `it is shorter than a qcow2 header (${size} bytes)`, REEXPORT);
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw damaged(file, `qcow2 version ${version} (qemu writes 2 or 3)`, REEXPORT);
  const backingOffset = head.readBigUInt64BE(8);
  const virtualBytes = head.readBigUInt64BE(24);
  const cryptMethod = head.readUInt32BE(32);
  if (backingOffset !== 0n) {
    const backingLength = head.readUInt32BE(16);
    const name =
      Number(backingOffset) + backingLength <= size && backingLength <= 1023
        ? ` (${(await readAt(handle, Number(backingOffset), backingLength)).toString('utf8')})`
        : '';
    throw unsupported(
      file,
      `a qcow2 overlay on a backing file${name}: only its changes are in this file`,
      `merge the chain into one image first: qemu-img convert -O qcow2 <this image> <merged.qcow2>, then point the inventory at the merged image`
    );
  }
  if (cryptMethod !== 0) {
    throw unsupported(
      file,
      'an encrypted qcow2 image',
      'decrypt it where its key is known (qemu-img convert --object secret,... --image-opts ...) into a plain image'
    );
  }
  if (version === 3 && head.length >= 80 && (head.readBigUInt64BE(72) & CORRUPT) !== 0n) {
    throw damaged(file, 'qemu marked this qcow2 image corrupt', 'Repair it with: qemu-img check -r all <image>');
  }
  if (virtualBytes === 0n) throw damaged(file, 'the qcow2 header declares an empty disk', REEXPORT);
  if (virtualBytes > BigInt(MAX_IMPORT_BYTES))
    throw tooLarge(file, `its qcow2 header declares a ${gib(virtualBytes)} disk`, true);
  return {
    format: 'QCOW2',
    kind: `qcow2 (v${version}) image`,
    imageBytes: size,
    virtualBytes: Number(virtualBytes),
    conversion: { qemuFormat: 'qcow2' },
  };
}
