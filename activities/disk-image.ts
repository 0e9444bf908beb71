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
import type { DiskFormat, PreflightResult, VmSpec } from '../common/contracts/migration';
import { activityLog } from './activity-context';
import { FailureType } from '../common/failures';
import { openImage, readAt } from './image-file';
import {
  FOOTER_SIZE,
  isVhdFooter,
  parseVhdDynamicHeader,
  parseVhdFooter,
  VHD_COOKIE,
  VHD_DISK_TYPES,
  VHD_MAX_BYTES,
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
  VMDK_HEADER_BYTES,
  VMDK_MAGIC,
  vmdkHeaderProblem,
} from './vmdk-header';

const GiB = 1024 ** 3;
/** EC2 CLI's floor for boot volumes. */
const MIN_VOLUME_GIB = 8;
/**
 * The largest disk ImportInstance can boot: the boot volume must be MBR-partitioned, and MBR addresses
 * 2 TiB (reference §5.1). A header that declares more is either a disk EC2 cannot take or a damaged header;
 * either way nothing should be uploaded for it.
 */
const MAX_IMPORT_BYTES = 2048 * GiB;

export interface ImageInfo {
  format: DiskFormat;
  kind: string;
  imageBytes: number;
  virtualBytes: number;
}

export interface InspectOptions {
  imageRoots?: readonly string[];
  /**
   * The format the inventory declares. A file without any known header is taken for a RAW disk only when
   * neither this nor its name (`.vmdk`, `.vhd`) says otherwise.
   */
  declaredFormat?: DiskFormat;
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

function gib(bytes: number | bigint): string {
  return `${Math.round(Number(bytes) / GiB)} GiB`;
}

function sizeText(bytes: number): string {
  if (bytes >= GiB) return gib(bytes);
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MiB` : `${bytes} bytes`;
}

/**
 * A disk EC2 cannot boot because of its size; `what` says where the size comes from. A size read from a
 * header may also be a damaged header, and the operator cannot tell which from here: say both.
 */
function tooLarge(file: string, what: string, fromHeader: boolean): ApplicationFailure {
  const damage = fromHeader
    ? ' If the header is wrong, the image is damaged: copy or export it again from its source.'
    : '';
  return ApplicationFailure.nonRetryable(
    `Disk image ${file}: ${what}; EC2 ImportInstance imports boot volumes of at most ${gib(MAX_IMPORT_BYTES)} (2 TiB, the MBR limit). If the disk really is that large, shrink its partitions and the disk below 2 TiB inside the VM and export it again.${damage}`,
    FailureType.ImageFormatUnsupported
  );
}

/** Bytes for a message: the printable text and the hex, e.g. `"This" (54 68 69 73)`. */
function describeBytes(bytes: Buffer): string {
  if (bytes.length === 0) return 'nothing (the file is too short)';
  const text = bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return `"${text}" (${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`;
}

/** The format the inventory or, failing that, the file's name claims: what a file without magic must not contradict. */
export interface ExpectedFormat {
  format: DiskFormat;
  source: 'inventory' | 'name';
}

function formatFromName(file: string): ExpectedFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.vmdk') return { format: 'VMDK', source: 'name' };
  if (ext === '.vhd') return { format: 'VHD', source: 'name' };
  return undefined;
}

/**
 * A file with no known header where a VMDK or VHD was expected: a wrong file (notes, a log, random bytes)
 * or a damaged one. Taking it for a RAW disk would upload garbage and fail the conversion an hour later.
 */
function wrongMagic(file: string, expected: ExpectedFormat, head: Buffer, tail: Buffer): ApplicationFailure {
  const claim =
    expected.source === 'inventory'
      ? `is declared as ${expected.format} in the inventory`
      : `is named *.${expected.format.toLowerCase()}`;
  const missing =
    expected.format === 'VMDK'
      ? `has no VMDK header: expected "${VMDK_MAGIC}" at offset 0, found ${describeBytes(head.subarray(0, VMDK_MAGIC.length))}`
      : `has no VHD footer: expected "${VHD_COOKIE}" in the last 512 bytes, found ${describeBytes(tail.subarray(0, VHD_COOKIE.length))}`;
  const raw =
    expected.source === 'inventory' ? 'set format to RAW' : 'set format to RAW in the inventory (or rename it)';
  return ApplicationFailure.nonRetryable(
    `Disk image ${file} ${claim} but ${missing}. It is not a ${expected.format} image: point the inventory at the right file, or copy or export the image again if it is damaged; if it really is a RAW disk, ${raw}.`,
    FailureType.ImageFormatMismatch
  );
}

// ---------------------------------------------------------------------------------------------------
// VMDK
// ---------------------------------------------------------------------------------------------------

async function inspectVmdk(handle: FileHandle, size: number, head: Buffer, file: string): Promise<ImageInfo> {
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
  if (footer.currentSize > BigInt(VHD_MAX_BYTES)) {
    throw damaged(
      file,
      `its footer claims a ${gib(footer.currentSize)} disk, more than the ${gib(VHD_MAX_BYTES)} a VHD can hold`,
      REEXPORT
    );
  }
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
  checkVhdBlockTableSize(dyn, virtualBytes, file);
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

/**
 * The spec sizes the block table to the disk (entries = disk size / block size). A table for more than the
 * largest VHD is garbage (and reading it could mean gigabytes); one that covers less than the footer's size
 * leaves the rest of the disk nowhere to live (qemu: "Page table too small").
 */
function checkVhdBlockTableSize(
  dyn: { maxTableEntries: number; blockSize: number },
  virtualBytes: number,
  file: string
): void {
  const blocks = `${dyn.maxTableEntries} blocks of ${sizeText(dyn.blockSize)}`;
  if (dyn.maxTableEntries > Math.ceil(VHD_MAX_BYTES / dyn.blockSize)) {
    throw damaged(
      file,
      `its block table declares ${blocks}, more than the ${gib(VHD_MAX_BYTES)} a VHD can hold`,
      REEXPORT
    );
  }
  const covered = dyn.maxTableEntries * dyn.blockSize;
  if (covered < virtualBytes) {
    throw damaged(
      file,
      `its footer claims a ${sizeText(virtualBytes)} disk but its block table covers only ${sizeText(covered)} (${blocks})`,
      REEXPORT
    );
  }
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

/**
 * Detects the format of an open image from its magic bytes and checks that it is complete. `expected` is
 * what the inventory or the file's name claims: it decides whether a file without magic may be RAW.
 */
export async function detectFormat(
  handle: FileHandle,
  size: number,
  file: string,
  expected?: ExpectedFormat
): Promise<ImageInfo> {
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
  const expected: ExpectedFormat | undefined = opts.declaredFormat
    ? { format: opts.declaredFormat, source: 'inventory' }
    : formatFromName(file);
  let info: ImageInfo;
  try {
    info = await detectFormat(image.handle, image.size, file, expected);
  } finally {
    await image.handle.close();
  }
  const qemuImg = opts.qemuImg ?? 'qemu-img';
  // A RAW disk's virtual size is its length: qemu-img could only repeat it (and a spawn per VM is not free).
  if (qemuImg !== false && info.format !== 'RAW') {
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
  const info = await inspectImage(spec.image, { ...opts, declaredFormat: spec.format });
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
