/**
 * OVA (a tar whose first file is the OVF descriptor, as vSphere, VirtualBox and ovftool export): found by
 * its tar header, indexed without extracting anything (tar-index.ts), its descriptor parsed (ovf.ts), and
 * each disk checked in place as the stream-optimized VMDK those tools write: the OVF's first is the boot
 * disk, the others data disks (ImportVolume). The upload then reads each disk's byte range inside the OVA.
 */
import type { FileHandle } from 'node:fs/promises';
import { readAt } from '../disk-image/image-file';
import type { ImageInfo } from '../disk-image/limits';
import { REEXPORT, damaged, unsupported } from '../disk-image/rejections';
import { SECTOR, isStreamOptimized, isVmdkHeader, parseVmdkHeader } from '../disk-image/vmdk-header';
import { inspectVmdk } from '../disk-image/vmdk';
import { summarizeOvf } from './guest-os';
import { OvfError, parseOvf } from './ovf';
import { TarError, indexTar, isRegular } from './tar-index';

/** An OVF descriptor is kilobytes; more is not one. */
const MAX_OVF_BYTES = 4 * 1024 * 1024;

/** True when `head` (the file's first 512 bytes or more) is a ustar/GNU tar header. */
export function isTarHeader(head: Buffer): boolean {
  return head.length >= SECTOR && head.toString('latin1', 257, 262) === 'ustar';
}

/** The same file seen from `base` on: what the VMDK checks read of a disk inside the OVA. */
function window(handle: FileHandle, base: number): FileHandle {
  const view = {
    read: (buffer: Buffer, offset: number, length: number, position: number) =>
      handle.read(buffer, offset, length, base + position),
  };
  return view as unknown as FileHandle;
}

/**
 * The OVA's disk `diskIndex` (counted from 0 in the OVF's order): 0 is the boot disk, which pre-flight reads;
 * the others are the VM's data disks (activities/data-disks.ts), each uploaded from its own byte range.
 */
export async function inspectOva(handle: FileHandle, size: number, file: string, diskIndex = 0): Promise<ImageInfo> {
  let members;
  try {
    members = (await indexTar(handle, size)).filter(isRegular);
  } catch (err) {
    if (err instanceof TarError) throw damaged(file, `it is not a complete tar archive: ${err.message}`, REEXPORT);
    throw err;
  }
  const descriptor = members[0];
  if (!descriptor || !descriptor.name.toLowerCase().endsWith('.ovf')) {
    throw unsupported(
      file,
      `a tar archive whose first file is ${descriptor ? `"${descriptor.name}"` : 'missing'}, not an OVF descriptor (so not an OVA)`,
      'export the VM as an OVA (its first file is the .ovf), or point the inventory at its disk image'
    );
  }
  if (descriptor.size > MAX_OVF_BYTES)
    throw damaged(file, `its OVF descriptor is ${descriptor.size} bytes (not a descriptor)`, REEXPORT);
  let ovf;
  try {
    ovf = parseOvf((await readAt(handle, descriptor.offset, descriptor.size)).toString('utf8'));
  } catch (err) {
    if (err instanceof OvfError) throw damaged(file, err.message, REEXPORT);
    throw err;
  }
  if (ovf.disks.length === 0) throw damaged(file, 'its OVF descriptor lists no disk', REEXPORT);
  if (diskIndex >= ovf.disks.length)
    throw damaged(
      file,
      `its OVF lists ${ovf.disks.length} disk(s); disk ${diskIndex} (counted from 0) is not one`,
      REEXPORT
    );
  const disk = ovf.disks[diskIndex]!;
  const where = `${file} (its disk ${disk.href})`;
  if (disk.compression && disk.compression !== 'identity') {
    throw unsupported(
      where,
      `a ${disk.compression}-compressed disk inside the OVA`,
      'export the OVA again without compression (ovftool: leave out --compress), or extract and decompress the disk and point the inventory at it'
    );
  }
  const wanted = disk.href.replace(/^\.\//, '');
  const member = members.find((m) => m.name.replace(/^\.\//, '') === wanted);
  if (!member) throw damaged(file, `its OVF names the disk file ${disk.href}, which the OVA does not hold`, REEXPORT);
  const view = window(handle, member.offset);
  const head = await readAt(view, 0, Math.min(member.size, 2 * SECTOR));
  if (!isVmdkHeader(head) || (head.length >= 79 && !isStreamOptimized(parseVmdkHeader(head)))) {
    throw unsupported(
      where,
      'an OVA whose disk is not a stream-optimized VMDK',
      'export it with stream-optimized disks (what vSphere and ovftool write), or extract the disk and point the inventory at it: it is converted on the site worker'
    );
  }
  const inner = await inspectVmdk(view, member.size, head, where);
  const summary = summarizeOvf(ovf);
  return {
    format: 'OVA',
    kind: `OVA (stream-optimized VMDK ${disk.href})`,
    imageBytes: member.size,
    virtualBytes: Math.max(inner.virtualBytes, disk.capacityBytes ?? 0),
    imageOffset: member.offset,
    containerBytes: size,
    ovf: summary,
  };
}
