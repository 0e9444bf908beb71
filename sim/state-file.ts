/**
 * Persistence: the whole state as JSON, written atomically (temp file + rename) shortly after each change,
 * so a killed simulator loses at most the last few milliseconds and never leaves a half-written file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SimState } from './model/types';

export class StateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  async load(): Promise<SimState | undefined> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as SimState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read simulator state ${this.file}: ${(err as Error).message}`);
    }
  }

  saveSoon(state: SimState): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush(state);
    }, 50);
  }

  async flush(state: SimState): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const json = JSON.stringify(state);
    this.writing = this.writing.then(async () => {
      await mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, json);
      await rename(tmp, this.file);
    });
    await this.writing;
  }
}
