/**
 * VMDK: a stream-optimized VMDK is uploaded as it is (a complete one ends with its footer and end-of-stream
 * marker); a monolithicSparse one is converted to one on the site worker first.
 */
import type { ApplicationFailure } from '@temporalio/common';
import type { FileHandle } from 'node:fs/promises';
import type { VmdkHeader } from './vmdk-header';
import {
  GD_AT_END,
  SECTOR,
  VMDK_HEADER_BYTES,
  descriptorCreateType,
  grainDirectoryEntries,
  isEndOfStreamMarker,
  isStreamOptimized,
  isVmdkHeader,
  parseVmdkHeader,
  vmdkHeaderProblem,
} from './vmdk-header';
import { readAt } from './image-file';
import type { ImageInfo } from './limits';
import { MAX_IMPORT_BYTES } from './limits';
import { REEXPORT, damaged, fixCommand, gib, tooLarge, unsupported } from './rejections';

export async function inspectVmdk(handle: FileHandle, size: number, head: Buffer, file: string): Promise<ImageInfo> {
  if (head.length < VMDK_HEADER_BYTES)
    throw damaged(file, `it is shorter than a VMDK header (${size} bytes)`, REEXPORT);
  const header = parseVmdkHeader(head);
  // Before anything is read at the offsets it gives: a garbage header must not be taken for a sparse VMDK
  // (whose "fix" would fail) nor drive reads of gigabytes.
  const problem = vmdkHeaderProblem(header, size);
  if (problem) throw damaged(file, `its VMDK header is not valid: ${problem}`, REEXPORT);
  if (!isStreamOptimized(header)) {
    const descriptor =
      header.descriptorOffset > 0n && header.descriptorSize > 0n
        ? await readAt(
            handle,
            Number(header.descriptorOffset) * SECTOR,
            Math.min(Number(header.descriptorSize) * SECTOR, 64 * 1024)
          )
        : Buffer.alloc(0);
    const createType =
      descriptorCreateType(descriptor) ?? (header.compressAlgorithm === 0 ? 'monolithicSparse' : 'unknown');
    // A hosted sparse disk (Workstation, VirtualBox) is whole in this one file: the site worker converts it.
    // A snapshot delta (it names a parent) or another layout is not.
    if (createType === 'monolithicSparse' && !/^\s*parentFileNameHint\s*=/m.test(descriptor.toString('latin1'))) {
      const virtualBytes = header.capacity * BigInt(SECTOR);
      if (virtualBytes > BigInt(MAX_IMPORT_BYTES))
        throw tooLarge(file, `its VMDK header declares a ${gib(virtualBytes)} disk`, true);
      return {
        format: 'VMDK',
        kind: 'monolithicSparse VMDK',
        imageBytes: size,
        virtualBytes: Number(virtualBytes),
        conversion: { qemuFormat: 'vmdk' },
      };
    }
    throw unsupported(file, `a ${createType} VMDK (not stream-optimized)`, fixCommand(file, 'vmdk'));
  }
  if (header.capacity === 0n || header.grainSize === 0n || header.numGTEsPerGT === 0) {
    throw damaged(file, 'the VMDK header has a zero capacity or grain size', REEXPORT);
  }
  if (header.uncleanShutdown) {
    throw damaged(
      file,
      'the VMDK is marked as not cleanly closed (the tool writing it stopped early)',
      `${REEXPORT}, or: ${fixCommand(file, 'vmdk')}`
    );
  }
  // Refused before the grain directory walk, whose size follows from the capacity.
  const virtualBytes = header.capacity * BigInt(SECTOR);
  if (virtualBytes > BigInt(MAX_IMPORT_BYTES))
    throw tooLarge(file, `its VMDK header declares a ${gib(virtualBytes)} disk`, true);
  // qemu's own check ("File truncated, expecting at least ..."): the grains start at overHead.
  const dataStart = header.overHead * BigInt(SECTOR);
  if (dataStart > BigInt(size)) {
    throw damaged(
      file,
      `the stream VMDK is truncated (its data starts at byte ${dataStart}, past the end of the ${size}-byte file)`,
      REEXPORT
    );
  }
  await checkStreamVmdkComplete(handle, size, header, file);
  return {
    format: 'VMDK',
    kind: 'stream-optimized VMDK',
    imageBytes: size,
    virtualBytes: Number(header.capacity) * SECTOR,
  };
}

/**
 * A stream VMDK's capacity is far larger than the file, so the file's length says nothing; instead follow
 * the grain directory and grain tables: every table and the last grain (its marker and compressed bytes)
 * must lie inside the file. VMware-written files keep the directory at the end, behind a footer header and
 * an end-of-stream marker, which a cut-off file lacks.
 */
export async function checkStreamVmdkComplete(
  handle: FileHandle,
  size: number,
  header: VmdkHeader,
  file: string
): Promise<void> {
  const truncated = (what: string): ApplicationFailure =>
    damaged(file, `the stream VMDK is truncated (${what})`, REEXPORT);
  if (size % SECTOR !== 0) throw truncated('the file is not a whole number of 512-byte sectors');
  let gdOffset = header.gdOffset;
  if (gdOffset === GD_AT_END) {
    if (size < 3 * SECTOR) throw truncated('no footer');
    const [footer, eos] = [
      await readAt(handle, size - 2 * SECTOR, SECTOR),
      await readAt(handle, size - SECTOR, SECTOR),
    ];
    if (!isEndOfStreamMarker(eos) || !isVmdkHeader(footer))
      throw truncated('no footer and end-of-stream marker at the end of the file');
    gdOffset = parseVmdkHeader(footer).gdOffset;
    if (gdOffset === GD_AT_END) throw damaged(file, 'the VMDK footer does not locate the grain directory', REEXPORT);
  }
  const entries = grainDirectoryEntries(header);
  const gdStart = Number(gdOffset) * SECTOR;
  if (gdStart + entries * 4 > size) throw truncated('the grain directory lies past the end of the file');
  // A directory in front of the data (qemu's layout) must end before the data starts; one that does not
  // was sized by a capacity that the file never had.
  const gdSectors = BigInt(Math.ceil((entries * 4) / SECTOR));
  if (header.gdOffset !== GD_AT_END && gdOffset + gdSectors > header.overHead) {
    throw damaged(
      file,
      `a capacity of ${gib(header.capacity * BigInt(SECTOR))} needs a grain directory of ${gdSectors} sectors at sector ${gdOffset}, which runs past the start of the data at sector ${header.overHead} (the VMDK header's capacity or grain directory offset is wrong)`,
      REEXPORT
    );
  }
  const gd = await readAt(handle, gdStart, entries * 4);
  const gtBytes = header.numGTEsPerGT * 4;
  // Each grain table belongs to one directory entry; shared ones are damage, and would let a small file
  // make pre-flight read the same table millions of times.
  const seen = new Map<number, number>();
  let lastGrain = 0;
  for (let i = 0; i < entries; i++) {
    const gtSector = gd.readUInt32LE(i * 4);
    if (gtSector === 0) continue;
    if (gtSector * SECTOR + gtBytes > size) throw truncated(`grain table ${i} lies past the end of the file`);
    const other = seen.get(gtSector);
    if (other !== undefined) {
      throw damaged(
        file,
        `grain directory entries ${other} and ${i} point at the same grain table (sector ${gtSector})`,
        REEXPORT
      );
    }
    seen.set(gtSector, i);
    const gt = await readAt(handle, gtSector * SECTOR, gtBytes);
    for (let j = 0; j < header.numGTEsPerGT; j++) {
      const grain = gt.readUInt32LE(j * 4);
      if (grain > 1 && grain > lastGrain) lastGrain = grain; // 0 = unallocated, 1 = zeroed grain
    }
  }
  if (lastGrain === 0) return; // an empty disk
  const markerAt = lastGrain * SECTOR;
  if (markerAt + 12 > size) throw truncated('a grain lies past the end of the file');
  const marker = await readAt(handle, markerAt, 12);
  const compressed = marker.readUInt32LE(8);
  if (markerAt + 12 + compressed > size) throw truncated('the last grain is cut off');
}
