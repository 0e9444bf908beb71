/**
 * Every way pre-flight refuses an image, each with the command or step that fixes it: the operator reads
 * these, so they name the file, what is wrong and what to run.
 */
import { ApplicationFailure } from '@temporalio/common';
import path from 'node:path';
import { FailureType } from '../../common/failures';
import type { DiskFormat } from '../../common/contracts/migration';
import { VHD_COOKIE } from './vhd-footer';
import { VMDK_MAGIC } from './vmdk-header';
import { GiB, MAX_IMPORT_BYTES } from './limits';

export function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export function convertedName(file: string, suffix: string): string {
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

export function unsupported(file: string, what: string, fix: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `Disk image ${file} is ${what}, which EC2 ImportInstance does not accept (only stream-optimized VMDK, fixed or dynamic VHD, and RAW). Convert it: ${fix}`,
    FailureType.ImageFormatUnsupported
  );
}

export function damaged(file: string, what: string, fix: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `Disk image ${file} is damaged or incomplete: ${what}. ${fix}`,
    FailureType.ImageUnreadable
  );
}

export const REEXPORT = 'Copy or export the image again from its source';

export function gib(bytes: number | bigint): string {
  return `${Math.round(Number(bytes) / GiB)} GiB`;
}

export function sizeText(bytes: number): string {
  if (bytes >= GiB) return gib(bytes);
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MiB` : `${bytes} bytes`;
}

/**
 * A disk EC2 cannot boot because of its size; `what` says where the size comes from. A size read from a
 * header may also be a damaged header, and the operator cannot tell which from here: say both.
 */
export function tooLarge(file: string, what: string, fromHeader: boolean): ApplicationFailure {
  const damage = fromHeader
    ? ' If the header is wrong, the image is damaged: copy or export it again from its source.'
    : '';
  return ApplicationFailure.nonRetryable(
    `Disk image ${file}: ${what}; EC2 ImportInstance imports boot volumes of at most ${gib(MAX_IMPORT_BYTES)} (2 TiB, the MBR limit). If the disk really is that large, shrink its partitions and the disk below 2 TiB inside the VM and export it again.${damage}`,
    FailureType.ImageFormatUnsupported
  );
}

/** Bytes for a message: the printable text and the hex, e.g. `"This" (54 68 69 73)`. */
export function describeBytes(bytes: Buffer): string {
  if (bytes.length === 0) return 'nothing (the file is too short)';
  const text = bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return `"${text}" (${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`;
}

/** The format the inventory or, failing that, the file's name claims: what a file without magic must not contradict. */
export interface ExpectedFormat {
  format: DiskFormat;
  source: 'inventory' | 'name';
}

export function formatFromName(file: string): ExpectedFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.vmdk') return { format: 'VMDK', source: 'name' };
  if (ext === '.vhd') return { format: 'VHD', source: 'name' };
  return undefined;
}

/**
 * A file with no known header where a VMDK or VHD was expected: a wrong file (notes, a log, random bytes)
 * or a damaged one. Taking it for a RAW disk would upload garbage and fail the conversion an hour later.
 */
export function wrongMagic(file: string, expected: ExpectedFormat, head: Buffer, tail: Buffer): ApplicationFailure {
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
