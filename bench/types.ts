/**
 * The shape every benchmark returns. bench/run.ts writes it to bench/results/<name>.json and prints one
 * table row per figure, so a reader sees each measured value beside its goal and whether it was met.
 */
export interface BenchFigure {
  /** What was measured, e.g. `vmconvoy upload throughput`. */
  label: string;
  value: number;
  /** `MB/s`, `MiB`, `s`, `ratio`, `calls/VM`, ... */
  unit: string;
  /** Human-readable goal, e.g. `>= 1.0x lib-storage`; absent for context figures. */
  goal?: string;
  /** Whether the goal was met; absent when there is no goal. */
  met?: boolean;
}

export interface BenchResult {
  name: string;
  /** ISO time the benchmark finished. */
  finishedAt: string;
  /** Whether this was a `--quick` run (smaller sizes; figures not comparable with a full run). */
  quick: boolean;
  /** The parameters it ran with (sizes, counts, limits), so a run can be reproduced. */
  parameters: Record<string, unknown>;
  figures: BenchFigure[];
  /** Why a goal was missed, caveats, formulas. */
  notes: string[];
}

export interface BenchContext {
  quick: boolean;
  /** Progress lines for the operator (stderr). */
  log: (line: string) => void;
}

export type Benchmark = (ctx: BenchContext) => Promise<BenchResult>;
