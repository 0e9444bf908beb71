/**
 * Persistence: the whole state as JSON, written atomically (temp file + rename) shortly after each change,
 * so a killed simulator loses at most the last moments and never leaves a half-written file. "Shortly" is
 * paced by the write's own cost (`writeDelayMs`): the state grows with every task, and a fixed 50 ms cadence
 * made a 1,000-task simulator spend its CPU serialising megabytes of JSON.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SimState } from './model/types';

/**
 * The pause before the next write: 10× the last write's cost (so writing takes at most about a tenth of a
 * core), at least 50 ms, at most 10 s. A 1 s ceiling made the 10,000-task scale run's simulator spend a
 * fifth of a core serialising its state (bench/README "scale"); a state that costs seconds to write is a
 * benchmark's, whose runs do not restart the simulator.
 */
export function writeDelayMs(lastCostMs: number): number {
  return Math.min(10_000, Math.max(50, 10 * lastCostMs));
}

export class StateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** How long the last serialisation + write took (ms). */
  private lastCostMs = 0;

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
    }, writeDelayMs(this.lastCostMs));
  }

  async flush(state: SimState): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const started = performance.now();
    const json = JSON.stringify(state);
    this.writing = this.writing.then(async () => {
      await mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, json);
      await rename(tmp, this.file);
      this.lastCostMs = performance.now() - started;
    });
    await this.writing;
  }
}
