/**
 * A small reader of Windows registry hive files ("regf"): follows a key path from the root key and reads
 * string and DWORD values, fetching only the cells on that path (a SOFTWARE hive is tens of megabytes; a
 * version lookup needs a few kilobytes of it). Layout: the published REGF format notes (Joachim Metz,
 * "Windows NT Registry File (REGF) format"; Maxim Suhanov, "Windows registry file format specification").
 * Written here because no maintained hive reader exists on npm (the simulator uses Debian's hivex tools;
 * the product reads the hive itself so the two stay independent).
 */

export type ReadAt = (at: number, length: number) => Promise<Buffer>;

const BINS_START = 4096;
const REG_SZ = 1;
const REG_EXPAND_SZ = 2;
const REG_DWORD = 4;
const KEY_COMP_NAME = 0x20;
const VALUE_COMP_NAME = 0x1;
/** Cells are small; a bound keeps a damaged size field from asking for gigabytes. */
const MAX_CELL = 1024 * 1024;

export class Hive {
  private constructor(
    private readonly read: ReadAt,
    private readonly rootCell: number
  ) {}

  static async open(read: ReadAt): Promise<Hive> {
    const base = await read(0, 512);
    if (base.toString('latin1', 0, 4) !== 'regf') throw new Error('not a registry hive (no "regf" signature)');
    return new Hive(read, base.readUInt32LE(0x24));
  }

  /** A cell's data (after its 4-byte size), from its offset relative to the first hive bin. */
  private async cell(offset: number): Promise<Buffer> {
    const at = BINS_START + offset;
    const size = Math.abs((await this.read(at, 4)).readInt32LE(0));
    if (size < 8 || size > MAX_CELL) throw new Error(`registry hive: cell at ${offset} has size ${size}`);
    return this.read(at + 4, size - 4);
  }

  private async subkeyOffsets(list: number): Promise<number[]> {
    const cell = await this.cell(list);
    const sig = cell.toString('latin1', 0, 2);
    const count = cell.readUInt16LE(2);
    if (sig === 'lf' || sig === 'lh') return Array.from({ length: count }, (_, i) => cell.readUInt32LE(4 + i * 8));
    if (sig === 'li') return Array.from({ length: count }, (_, i) => cell.readUInt32LE(4 + i * 4));
    if (sig === 'ri') {
      const lists = Array.from({ length: count }, (_, i) => cell.readUInt32LE(4 + i * 4));
      const out: number[] = [];
      for (const l of lists) out.push(...(await this.subkeyOffsets(l)));
      return out;
    }
    throw new Error(`registry hive: unknown subkey list "${sig}"`);
  }

  private keyName(nk: Buffer): string {
    const length = nk.readUInt16LE(0x48);
    const flags = nk.readUInt16LE(2);
    return flags & KEY_COMP_NAME
      ? nk.toString('latin1', 0x4c, 0x4c + length)
      : nk.toString('utf16le', 0x4c, 0x4c + length);
  }

  /** The key node at `path` (names compared case-insensitively, as Windows does), or undefined. */
  private async key(path: readonly string[]): Promise<Buffer | undefined> {
    let nk = await this.cell(this.rootCell);
    for (const part of path) {
      if (nk.toString('latin1', 0, 2) !== 'nk') throw new Error('registry hive: key cell without "nk"');
      if (nk.readUInt32LE(0x14) === 0) return undefined;
      let next: Buffer | undefined;
      for (const offset of await this.subkeyOffsets(nk.readUInt32LE(0x1c))) {
        const child = await this.cell(offset);
        if (this.keyName(child).toLowerCase() === part.toLowerCase()) {
          next = child;
          break;
        }
      }
      if (!next) return undefined;
      nk = next;
    }
    return nk;
  }

  /** A REG_SZ / REG_EXPAND_SZ value as a string, a REG_DWORD as a number, or undefined when absent. */
  async value(path: readonly string[], name: string): Promise<string | number | undefined> {
    const nk = await this.key(path);
    if (!nk) return undefined;
    const count = nk.readUInt32LE(0x24);
    if (count === 0) return undefined;
    const list = await this.cell(nk.readUInt32LE(0x28));
    for (let i = 0; i < count; i++) {
      const vk = await this.cell(list.readUInt32LE(i * 4));
      if (vk.toString('latin1', 0, 2) !== 'vk') continue;
      const nameLength = vk.readUInt16LE(2);
      const vname =
        vk.readUInt16LE(0x10) & VALUE_COMP_NAME
          ? vk.toString('latin1', 0x14, 0x14 + nameLength)
          : vk.toString('utf16le', 0x14, 0x14 + nameLength);
      if (vname.toLowerCase() !== name.toLowerCase()) continue;
      return this.decode(vk);
    }
    return undefined;
  }

  private async decode(vk: Buffer): Promise<string | number | undefined> {
    const rawSize = vk.readUInt32LE(4);
    const type = vk.readUInt32LE(0x0c);
    const inline = (rawSize & 0x80000000) !== 0; // data of up to 4 bytes lives in the offset field itself
    const size = rawSize & 0x7fffffff;
    const data = inline ? vk.subarray(8, 8 + size) : (await this.cell(vk.readUInt32LE(8))).subarray(0, size);
    if (type === REG_DWORD) return data.length >= 4 ? data.readUInt32LE(0) : undefined;
    if (type === REG_SZ || type === REG_EXPAND_SZ) return data.toString('utf16le').replace(/\0.*$/s, '');
    return undefined;
  }
}
