/**
 * Which container a file is, from its bytes: VMDK magic, VHD cookie at the end, qcow2 or VHDX magic, a tar
 * header (OVA), a VMDK text descriptor, or RAW.
 */
import type { FileHandle } from 'node:fs/promises';
import { FOOTER_SIZE, VHD_COOKIE, isVhdFooter } from './vhd-footer';
import { SECTOR, isVmdkHeader } from './vmdk-header';
import { readAt } from './image-file';
import type { ImageInfo } from './limits';
import type { ExpectedFormat } from './rejections';
import { REEXPORT, damaged, describeBytes, fixCommand, unsupported, wrongMagic } from './rejections';
import { inspectVmdk } from './vmdk';
import { gptRejection, hasGptHeader, inspectVhd } from './vhd';
import { QCOW2_MAGIC, inspectQcow2 } from './qcow2';
import { DESCRIPTOR_MAGIC, inspectFlatVmdk } from './flat-vmdk';
import { inspectVhdx } from './vhdx';
import { inspectOva, isTarHeader } from '../ova/ova';

/** What detection needs beyond the bytes: where the file really is (a descriptor's extents lie beside it). */
export interface DetectContext {
  realPath: string;
  imageRoots: readonly string[];
  /** qemu-img, which reads a VHDX's size for pre-flight. @default 'qemu-img' */
  qemuImg?: string;
}

/**
 * Detects the format of an open image from its magic bytes and checks that it is complete. `expected` is
 * what the inventory or the file's name claims: it decides whether a file without magic may be RAW.
 */
export async function detectFormat(
  handle: FileHandle,
  size: number,
  file: string,
  expected?: ExpectedFormat,
  context: DetectContext = { realPath: file, imageRoots: [] }
): Promise<ImageInfo> {
  if (size === 0) throw damaged(file, 'the file is empty', REEXPORT);
  const head = await readAt(handle, 0, Math.min(size, 2 * SECTOR));
  const tail = size >= FOOTER_SIZE ? await readAt(handle, size - FOOTER_SIZE, FOOTER_SIZE) : Buffer.alloc(0);
  const magic = (length: number): string => head.toString('latin1', 0, length);

  if (isVmdkHeader(head)) return inspectVmdk(handle, size, head, file);
  if (magic(DESCRIPTOR_MAGIC.length) === DESCRIPTOR_MAGIC)
    return inspectFlatVmdk(handle, size, file, context.realPath, context.imageRoots);
  if (magic(4) === 'COWD') throw unsupported(file, 'an ESX COWD sparse VMDK', fixCommand(file, 'vmdk'));
  if (magic(8) === 'vhdxfile') return inspectVhdx(context.qemuImg ?? 'qemu-img', context.realPath, size, file);
  if (magic(4) === QCOW2_MAGIC) return inspectQcow2(handle, size, file);
  if (isTarHeader(head)) return inspectOva(handle, size, file);
  if (magic(4) === 'QED\0') throw unsupported(file, 'a QED image', fixCommand(file, 'qed'));
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f)
    throw unsupported(file, 'a VirtualBox VDI image', fixCommand(file, 'vdi'));
  if (isVhdFooter(tail)) return inspectVhd(handle, size, head, tail, file);
  if (isVhdFooter(head)) {
    throw damaged(
      file,
      'it starts like a dynamic VHD but has no footer at the end (truncated)',
      `${REEXPORT}; a complete dynamic VHD ends with the same "conectix" footer it starts with`
    );
  }
  // No magic: RAW, unless the inventory or the name says it is a VMDK or VHD (then it is the wrong file).
  if (expected && expected.format !== 'RAW') {
    // A VHD keeps its footer at the end, so a cut-off one has none; a length of partial sectors says so.
    if (expected.format === 'VHD' && size % SECTOR !== 0) {
      throw damaged(
        file,
        `it has no VHD footer at the end (expected "${VHD_COOKIE}", found ${describeBytes(tail.subarray(0, VHD_COOKIE.length))}) and its length ${size} is not a multiple of 512 (truncated)`,
        REEXPORT
      );
    }
    throw wrongMagic(file, expected, head, tail);
  }
  // A raw disk is whole sectors.
  if (size % SECTOR !== 0) {
    throw damaged(
      file,
      `no known image header, and as a RAW disk its length ${size} is not a multiple of 512 (truncated?)`,
      `${REEXPORT}; if it is another format, convert it to RAW: ${fixCommand(file, '<format>', 'raw')}`
    );
  }
  if (head.length >= 2 * SECTOR && hasGptHeader(head.subarray(SECTOR))) throw gptRejection(file);
  return { format: 'RAW', kind: 'RAW disk', imageBytes: size, virtualBytes: size };
}
