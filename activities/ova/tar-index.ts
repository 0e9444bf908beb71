/**
 * The members of a tar file and where their bytes lie, read by hopping from header to header (512 bytes
 * each) with positional reads: an OVA of hundreds of gigabytes is indexed in a few reads, and its disks
 * are then uploaded straight from their byte ranges. A streaming tar reader (tar-stream) would have to
 * pass every byte of the archive through itself and does not report member offsets, which the upload needs.
 *
 * Formats (POSIX.1-2001 / GNU tar manual, "Basic Tar Format"): ustar headers, with the GNU base-256 size
 * encoding for members over 8 GiB, pax extended headers (`x`: path, size) and GNU long names (`L`), which is
 * what OVF tools and GNU/BSD tar write.
 */
import type { FileHandle } from 'node:fs/promises';
import { readAt } from '../disk-image/image-file';

export const BLOCK = 512;

export interface TarMember {
  name: string;
  /** ustar typeflag: '0' (or '\0') for a regular file. */
  type: string;
  /** Where the member's bytes start in the archive. */
  offset: number;
  size: number;
}

export class TarError extends Error {}

function text(header: Buffer, start: number, length: number): string {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end === -1 ? field.length : end);
}

/** A numeric field: octal digits, or GNU's base-256 (first byte's high bit set) for values octal cannot hold. */
function numeric(header: Buffer, start: number, length: number): number {
  const field = header.subarray(start, start + length);
  if ((field[0]! & 0x80) !== 0) {
    let value = BigInt(field[0]! & 0x7f);
    for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarError('a member size too large to be real');
    return Number(value);
  }
  const digits = text(header, start, length).trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw new TarError(`a numeric field is not octal ("${digits}")`);
  return parseInt(digits, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = numeric(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

/** pax records: `<length> <key>=<value>\n`, each length counting the whole record. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(data.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length) break;
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}

const MAX_META_BYTES = 1024 * 1024;

/**
 * Lists the archive's members up to `limit` entries. Throws TarError when a header is not a tar header
 * (its checksum is wrong) or a member runs past the end of the file.
 */
export async function indexTar(handle: FileHandle, size: number, limit = 10_000): Promise<TarMember[]> {
  const members: TarMember[] = [];
  let at = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  while (at + BLOCK <= size && members.length < limit) {
    const header = await readAt(handle, at, BLOCK);
    if (header.every((b) => b === 0)) break; // the end-of-archive blocks
    if (!checksumOk(header)) throw new TarError(`the header at byte ${at} is not a tar header (checksum mismatch)`);
    const type = String.fromCharCode(header[156]!);
    let memberSize = numeric(header, 124, 12);
    const dataAt = at + BLOCK;
    if (type !== 'x' && type !== 'L' && pax.has('size')) memberSize = Number(pax.get('size'));
    if (!Number.isSafeInteger(memberSize) || memberSize < 0 || dataAt + memberSize > size)
      throw new TarError(`the member at byte ${at} runs past the end of the file (${size} bytes)`);
    const next = dataAt + Math.ceil(memberSize / BLOCK) * BLOCK;
    if (type === 'x' || type === 'L') {
      if (memberSize > MAX_META_BYTES) throw new TarError(`an extended header of ${memberSize} bytes`);
      const data = await readAt(handle, dataAt, memberSize);
      if (type === 'x') pax = paxRecords(data);
      else longName = data.toString('utf8').replace(/\0+$/, '');
    } else if (type !== 'g') {
      const prefix = text(header, 345, 155);
      const ustarName =
        prefix && text(header, 257, 5) === 'ustar' ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100);
      members.push({ name: pax.get('path') ?? longName ?? ustarName, type, offset: dataAt, size: memberSize });
      pax = new Map();
      longName = undefined;
    }
    at = next;
  }
  return members;
}

/** True for a regular file member. */
export function isRegular(member: TarMember): boolean {
  return member.type === '0' || member.type === '\0' || member.type === '7';
}
