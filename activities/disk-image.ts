/**
 * Pre-flight of a disk image: is it a file VM Import can take (stream-optimized VMDK, fixed or dynamic
 * VHD, RAW), is it complete, how big is the disk inside it. Reads the first and last sectors itself (and
 * the VMDK grain tables / VHD block table to catch truncation); `qemu-img info` is only a cross-check.
 * Every rejection names the command that fixes the image.
 */
import { ApplicationFailure } from '@temporalio/common';
import { execFile } from 'node:child_process';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { DiskFormat, PreflightResult, VmSpec } from '../workflows/types';
import { activityLog } from './activity-context';
import { FailureType } from './errors';
import { openImage, readAt } from './image-file';
import {
  FOOTER_SIZE,
  isVhdFooter,
  parseVhdDynamicHeader,
  parseVhdFooter,
  VHD_DISK_TYPES,
  vhdBitmapBytes,
} from './vhd-footer';
import type { VmdkHeader } from './vmdk-header';
import {
  descriptorCreateType,
  GD_AT_END,
  grainDirectoryEntries,
  isEndOfStreamMarker,
  isStreamOptimized,
  isVmdkHeader,
  parseVmdkHeader,
  SECTOR,
} from './vmdk-header';

const GiB = 1024 ** 3;
/** EC2 CLI's floor for boot volumes. */
const MIN_VOLUME_GIB = 8;

export interface ImageInfo {
  format: DiskFormat;
  kind: string;
  imageBytes: number;
  virtualBytes: number;
}

export interface InspectOptions {
  imageRoots?: readonly string[];
  /** qemu-img for the cross-check; false = skip it. @default 'qemu-img' (skipped when not installed) */
  qemuImg?: string | false;
}

// ---------------------------------------------------------------------------------------------------
// Rejections, each with its fix
// ---------------------------------------------------------------------------------------------------

function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

function convertedName(file: string, suffix: string): string {
  const ext = path.extname(file);
  return path.join(path.dirname(file), `${path.basename(file, ext)}${suffix}`);
}

/** The qemu-img command that turns `file` (of qemu format `from`) into an importable image. */
export function fixCommand(
  file: string,
  from: string,
  to: 'stream-vmdk' | 'fixed-vhd' | 'raw' = 'stream-vmdk'
): string {
  const target =
    to === 'stream-vmdk'
      ? { args: '-O vmdk -o subformat=streamOptimized', out: convertedName(file, '-stream.vmdk') }
      : to === 'fixed-vhd'
        ? { args: '-O vpc -o subformat=fixed,force_size=on', out: convertedName(file, '-fixed.vhd') }
        : { args: '-O raw', out: convertedName(file, '.raw') };
  return `qemu-img convert -f ${from} ${target.args} ${shellQuote(file)} ${shellQuote(target.out)}`;
}

function unsupported(file: string, what: string, fix: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `Disk image ${file} is ${what}, which EC2 ImportInstance does not accept (only stream-optimized VMDK, fixed or dynamic VHD, and RAW). Convert it: ${fix}`,
    FailureType.ImageFormatUnsupported
  );
}

function damaged(file: string, what: string, fix: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `Disk image ${file} is damaged or incomplete: ${what}. ${fix}`,
    FailureType.ImageUnreadable
  );
}

const REEXPORT = 'Copy or export the image again from its source';

// ---------------------------------------------------------------------------------------------------
// VMDK
// ---------------------------------------------------------------------------------------------------

async function inspectVmdk(handle: FileHandle, size: number, head: Buffer, file: string): Promise<ImageInfo> {
  const header = parseVmdkHeader(head);
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
async function checkStreamVmdkComplete(
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
  const gd = await readAt(handle, gdStart, entries * 4);
  const gtBytes = header.numGTEsPerGT * 4;
  let lastGrain = 0;
  for (let i = 0; i < entries; i++) {
    const gtSector = gd.readUInt32LE(i * 4);
    if (gtSector === 0) continue;
    if (gtSector * SECTOR + gtBytes > size) throw truncated(`grain table ${i} lies past the end of the file`);
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

// ---------------------------------------------------------------------------------------------------
// VHD
// ---------------------------------------------------------------------------------------------------

function hasGptHeader(sector1: Buffer): boolean {
  return sector1.length >= 8 && sector1.toString('latin1', 0, 8) === 'EFI PART';
}

function gptRejection(file: string): ApplicationFailure {
  return unsupported(
    file,
    'a GPT-partitioned disk (EC2 would fail with "No bootable partition found")',
    'convert the partition table to MBR inside the VM (e.g. `sgdisk --gpttombr`) and export the disk again; GPT/UEFI disks need ImportImage instead'
  );
}

async function inspectVhd(
  handle: FileHandle,
  size: number,
  head: Buffer,
  tail: Buffer,
  file: string
): Promise<ImageInfo> {
  const footer = parseVhdFooter(tail);
  if (!footer.checksumValid)
    throw damaged(file, 'the VHD footer checksum is wrong', `${REEXPORT}, or: ${fixCommand(file, 'vpc', 'fixed-vhd')}`);
  const type = VHD_DISK_TYPES[footer.diskType];
  if (type === 'differencing') {
    throw unsupported(
      file,
      'a differencing VHD (it needs its parent disk)',
      `${fixCommand(file, 'vpc', 'fixed-vhd')} (with the parent VHD beside it), or merge it into its parent first`
    );
  }
  if (type === undefined) throw damaged(file, `the VHD footer has an unknown disk type ${footer.diskType}`, REEXPORT);
  const virtualBytes = Number(footer.currentSize);
  if (type === 'fixed') {
    if (size - FOOTER_SIZE !== virtualBytes) {
      throw damaged(
        file,
        `the fixed VHD holds ${size - FOOTER_SIZE} data bytes but its footer says ${virtualBytes}`,
        REEXPORT
      );
    }
    if (hasGptHeader(await readAt(handle, SECTOR, 8))) throw gptRejection(file);
    return { format: 'VHD', kind: 'fixed VHD', imageBytes: size, virtualBytes };
  }
  // Dynamic: the copy of the footer at offset 0 must equal the one at the end (else EC2: "Footers not identical").
  if (!head.subarray(0, FOOTER_SIZE).equals(tail)) {
    throw damaged(
      file,
      'the footer copies at the start and the end of the dynamic VHD differ (EC2 reports "Footers not identical")',
      `${REEXPORT}, or: ${fixCommand(file, 'vpc', 'fixed-vhd')}`
    );
  }
  const dataOffset = Number(footer.dataOffset);
  if (dataOffset + 1024 > size - FOOTER_SIZE)
    throw damaged(file, 'the dynamic VHD header lies past the end of the file', REEXPORT);
  const dyn = parseVhdDynamicHeaderOrNull(await readAt(handle, dataOffset, 1024));
  if (!dyn) throw damaged(file, 'the dynamic VHD header (cxsparse) is missing or its checksum is wrong', REEXPORT);
  const batStart = Number(dyn.tableOffset);
  if (batStart + dyn.maxTableEntries * 4 > size - FOOTER_SIZE)
    throw damaged(file, 'the dynamic VHD block table lies past the end of the file', REEXPORT);
  const bat = await readAt(handle, batStart, dyn.maxTableEntries * 4);
  const blockBytes = vhdBitmapBytes(dyn.blockSize) + dyn.blockSize;
  for (let i = 0; i < dyn.maxTableEntries; i++) {
    const sector = bat.readUInt32BE(i * 4);
    if (sector === 0xffffffff) continue;
    if (sector * SECTOR + blockBytes > size - FOOTER_SIZE)
      throw damaged(file, `block ${i} of the dynamic VHD lies past the end of the file (truncated)`, REEXPORT);
  }
  return { format: 'VHD', kind: 'dynamic VHD', imageBytes: size, virtualBytes };
}

function parseVhdDynamicHeaderOrNull(block: Buffer): ReturnType<typeof parseVhdDynamicHeader> | null {
  try {
    const header = parseVhdDynamicHeader(block);
    return header.checksumValid && header.blockSize > 0 && header.blockSize % SECTOR === 0 ? header : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------------

/** Detects the format of an open image from its magic bytes and checks that it is complete. */
export async function detectFormat(handle: FileHandle, size: number, file: string): Promise<ImageInfo> {
  if (size === 0) throw damaged(file, 'the file is empty', REEXPORT);
  const head = await readAt(handle, 0, Math.min(size, 2 * SECTOR));
  const tail = size >= FOOTER_SIZE ? await readAt(handle, size - FOOTER_SIZE, FOOTER_SIZE) : Buffer.alloc(0);
  const magic = (length: number): string => head.toString('latin1', 0, length);

  if (isVmdkHeader(head)) return inspectVmdk(handle, size, head, file);
  if (magic(21) === '# Disk DescriptorFile') {
    throw unsupported(
      file,
      'a VMDK descriptor whose data lives in separate extent files (monolithicFlat/split)',
      fixCommand(file, 'vmdk')
    );
  }
  if (magic(4) === 'COWD') throw unsupported(file, 'an ESX COWD sparse VMDK', fixCommand(file, 'vmdk'));
  if (magic(8) === 'vhdxfile') throw unsupported(file, 'a VHDX image', fixCommand(file, 'vhdx', 'fixed-vhd'));
  if (magic(4) === 'QFI\xfb') throw unsupported(file, 'a qcow2 image', fixCommand(file, 'qcow2'));
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
  // No magic: RAW. A raw disk is whole sectors.
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

// ---------------------------------------------------------------------------------------------------
// qemu-img cross-check (optional)
// ---------------------------------------------------------------------------------------------------

const QEMU_FORMAT: Record<DiskFormat, string> = { VMDK: 'vmdk', VHD: 'vpc', RAW: 'raw' };

/** `qemu-img info`'s virtual size, or undefined when qemu-img is missing or cannot read the file. */
export function qemuVirtualSize(qemuImg: string, file: string, format: DiskFormat): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile(
      qemuImg,
      ['info', '-U', '-f', QEMU_FORMAT[format], '--output=json', file],
      { timeout: 30_000 },
      (err, stdout) => {
        if (err) return resolve(undefined);
        try {
          const size = (JSON.parse(stdout) as { 'virtual-size'?: unknown })['virtual-size'];
          resolve(typeof size === 'number' ? size : undefined);
        } catch {
          resolve(undefined);
        }
      }
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// The pre-flight
// ---------------------------------------------------------------------------------------------------

export async function inspectImage(file: string, opts: InspectOptions = {}): Promise<ImageInfo> {
  const image = await openImage(file, opts.imageRoots ?? []);
  let info: ImageInfo;
  try {
    info = await detectFormat(image.handle, image.size, file);
  } finally {
    await image.handle.close();
  }
  const qemuImg = opts.qemuImg ?? 'qemu-img';
  if (qemuImg !== false) {
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
  return info;
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

export async function preflight(spec: VmSpec, opts: InspectOptions = {}): Promise<PreflightResult> {
  const info = await inspectImage(spec.image, opts);
  if (spec.format !== undefined && spec.format !== info.format) {
    throw ApplicationFailure.nonRetryable(
      `Disk image ${spec.image} is declared as ${spec.format} in the inventory but is a ${info.kind}. Set format to ${info.format} (or leave it empty to detect it).`,
      FailureType.ImageFormatMismatch
    );
  }
  const volume = volumeSizeGib(info.virtualBytes, spec.volumeSizeGib, spec.image);
  return {
    format: info.format,
    kind: info.kind,
    imageBytes: info.imageBytes,
    virtualBytes: info.virtualBytes,
    volumeSizeGib: volume,
  };
}
