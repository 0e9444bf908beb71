/**
 * `npm run bench`: every benchmark in one run, side by side with what a user would pick instead. Each
 * writes bench/results/<name>.json (a `--quick` run: bench/results/quick/, not committed); the table at
 * the end shows each figure beside its goal and whether it was met. A full run (of some or all) rewrites
 * the results section of bench/README.md from every benchmark's latest full result.
 *
 *   npm run bench [-- --quick] [-- upload makespan overhead api-efficiency scale inspection cluster wire]
 *
 * Needs the local tools (`npm run provision`). Starts its own servers on free ports; run it on an
 * otherwise idle machine: the figures are wall-clock throughputs.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { apiEfficiencyBenchmark } from './api-efficiency';
import { clusterBenchmark } from './cluster';
import { stopSharedBenchFleet } from './fleet-env';
import { inspectionBenchmark } from './inspection';
import { codeVersion, loadResults, machineDescription, updateReadme } from './report';
import { makespanBenchmark } from './makespan';
import { overheadBenchmark } from './overhead';
import { scaleBenchmark } from './scale';
import type { BenchResult, Benchmark } from './types';
import { uploadBenchmark } from './upload';
import { wireBenchmark } from './wire';
import { rerunOnSupportedNode } from '../dev/node-runtime';

const BENCHMARKS: Record<string, Benchmark> = {
  upload: uploadBenchmark,
  makespan: makespanBenchmark,
  overhead: overheadBenchmark,
  'api-efficiency': apiEfficiencyBenchmark,
  scale: scaleBenchmark,
  inspection: inspectionBenchmark,
  cluster: clusterBenchmark,
  wire: wireBenchmark,
};

function table(results: BenchResult[]): string[] {
  const rows = results.flatMap((r) =>
    r.figures.map((f) => [
      r.name,
      f.label,
      `${formatValue(f.value)} ${f.unit}`,
      f.goal ?? '',
      f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
    ])
  );
  const header = ['benchmark', 'figure', 'value', 'goal', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function formatValue(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const rerun = await rerunOnSupportedNode(__filename, args, { log: (line) => console.error(`[bench] ${line}`) });
  if (rerun !== undefined) return rerun;
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHMARKS).join(', ')}`);
    return 1;
  }
  const selected = names.length > 0 ? names : Object.keys(BENCHMARKS);
  const outDir = path.join(__dirname, 'results', quick ? 'quick' : '');
  await mkdir(outDir, { recursive: true });
  const started = Date.now();
  const results: BenchResult[] = [];
  let crashed = false;
  for (const name of selected) {
    const log = (line: string): void => console.error(`[${new Date().toISOString().slice(11, 19)} ${name}] ${line}`);
    log(`starting${quick ? ' (quick)' : ''}`);
    const t0 = Date.now();
    try {
      const result = await BENCHMARKS[name]!({ quick, log });
      result.parameters.durationSeconds = Math.round((Date.now() - t0) / 1000);
      result.parameters.machine = machineDescription();
      result.parameters.commit = codeVersion();
      results.push(result);
      await writeFile(path.join(outDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
      for (const note of result.notes) log(`note: ${note}`);
    } catch (err) {
      crashed = true;
      log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    log(`done in ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  await stopSharedBenchFleet();
  console.log('');
  for (const line of table(results)) console.log(line);
  const missed = results.flatMap((r) => r.figures.filter((f) => f.met === false).map((f) => `${r.name}: ${f.label}`));
  console.log(
    `\n${results.length} benchmarks in ${Math.round((Date.now() - started) / 1000)} s on ${machineDescription()}; goals missed: ${missed.length === 0 ? 'none' : missed.join('; ')}`
  );
  // A full run (of all or some) refreshes bench/README.md from every benchmark's latest full result.
  if (!quick && results.length > 0)
    await updateReadme(path.join(__dirname, 'README.md'), await loadResults(outDir, Object.keys(BENCHMARKS)));
  // A missed goal is a finding, not a crash: the figures are written either way.
  return crashed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
