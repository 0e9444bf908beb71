/**
 * A VMDK text descriptor whose data lives in extent files beside it (monolithicFlat, vmfs, twoGbMaxExtent*):
 * what vSphere datastores hold. qemu-img converts it by opening the extent files the descriptor names, so
 * every one of them must be a regular file inside the image roots and long enough, checked here first;
 * a snapshot delta (a parent disk) or a raw device mapping is refused.
 */
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { openImage, readAt } from './image-file';
import type { ImageInfo } from './limits';
import { MAX_IMPORT_BYTES } from './limits';
import { REEXPORT, damaged, gib, tooLarge, unsupported } from './rejections';
import { SECTOR } from './vmdk-header';

export const DESCRIPTOR_MAGIC = '# Disk DescriptorFile';
/** A descriptor is a few hundred bytes of text; more is not a descriptor. */
const MAX_DESCRIPTOR_BYTES = 64 * 1024;
/** Extent types whose data qemu reads from the file named (FLAT/VMFS: raw bytes, SPARSE: a hosted sparse extent). */
const FILE_EXTENTS = new Set(['FLAT', 'VMFS', 'SPARSE']);

export interface Extent {
  sectors: number;
  type: string;
  file?: string;
  /** FLAT: the extent's first sector inside its file. */
  offsetSectors: number;
}

/** The descriptor's extent lines (`RW 32768 FLAT "disk-flat.vmdk" 0`), createType and parent hint. */
export function parseDescriptor(text: string): { createType?: string; parent?: string; extents: Extent[] } {
  const createType = /^\s*createType\s*=\s*"([^"]*)"/m.exec(text)?.[1];
  const parent = /^\s*parentFileNameHint\s*=\s*"([^"]*)"/m.exec(text)?.[1];
  const extents: Extent[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?/.exec(line);
    if (!m) continue;
    extents.push({ sectors: Number(m[2]), type: m[3]!, file: m[4], offsetSectors: Number(m[5] ?? 0) });
  }
  return { createType, parent, extents };
}

export async function inspectFlatVmdk(
  handle: FileHandle,
  size: number,
  file: string,
  realPath: string,
  imageRoots: readonly string[]
): Promise<ImageInfo> {
  if (size > MAX_DESCRIPTOR_BYTES)
    throw damaged(file, `it starts like a VMDK descriptor but is ${size} bytes long`, REEXPORT);
  const text = (await readAt(handle, 0, size)).toString('utf8');
  const { createType, parent, extents } = parseDescriptor(text);
  if (parent !== undefined) {
    throw unsupported(
      file,
      `a VMDK snapshot delta on the parent disk ${parent}: only its changes are in these files`,
      'consolidate the snapshots (or clone the VM) and export the result'
    );
  }
  if (extents.length === 0) throw damaged(file, 'the VMDK descriptor lists no extents', REEXPORT);
  const odd = extents.find((e) => e.type !== 'ZERO' && !FILE_EXTENTS.has(e.type));
  if (odd) {
    throw unsupported(
      file,
      `a ${createType ?? 'VMDK'} descriptor with a ${odd.type} extent (a raw device mapping or snapshot delta)`,
      'clone the disk to a flat or thin virtual disk and export that'
    );
  }
  const dir = path.dirname(realPath);
  let virtualSectors = 0;
  for (const extent of extents) {
    virtualSectors += extent.sectors;
    if (extent.type === 'ZERO') continue;
    if (!extent.file) throw damaged(file, `an extent of the VMDK descriptor names no file`, REEXPORT);
    // Through the same checks as the image itself: qemu-img will open these paths.
    const data = await openImage(path.resolve(dir, extent.file), imageRoots);
    await data.handle.close();
    const needed = (extent.offsetSectors + extent.sectors) * SECTOR;
    if (extent.type !== 'SPARSE' && data.size < needed) {
      throw damaged(
        file,
        `its extent ${extent.file} is ${data.size} bytes but the descriptor needs ${needed} (truncated)`,
        REEXPORT
      );
    }
  }
  const virtualBytes = virtualSectors * SECTOR;
  if (virtualBytes === 0) throw damaged(file, 'the VMDK descriptor declares an empty disk', REEXPORT);
  if (virtualBytes > MAX_IMPORT_BYTES)
    throw tooLarge(file, `its descriptor declares a ${gib(virtualBytes)} disk`, true);
  return {
    format: 'VMDK',
    kind: `${createType ?? 'flat'} VMDK (descriptor and ${extents.length} extent file${extents.length === 1 ? '' : 's'})`,
    imageBytes: size,
    virtualBytes,
    conversion: { qemuFormat: 'vmdk' },
  };
}
