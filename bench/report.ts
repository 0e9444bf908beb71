/** The machine a run happened on, and the results section of bench/README.md. */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchResult } from './types';

export function machineDescription(): string {
  const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** The commit the benchmarks ran on ("+changes" when tracked files differ from it), so a figure can be traced to its code. */
export function codeVersion(): string {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: path.join(__dirname, '..'), encoding: 'utf8' }).trim();
  try {
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') === '' ? '' : '+changes'}`;
  } catch {
    return 'unknown';
  }
}

const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

function cell(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** The latest full result of each benchmark (bench/results/<name>.json), in the run order of `names`. */
export async function loadResults(dir: string, names: string[]): Promise<BenchResult[]> {
  const files = new Set(await readdir(dir).catch(() => []));
  const out: BenchResult[] = [];
  for (const name of names) {
    if (files.has(`${name}.json`))
      out.push(JSON.parse(await readFile(path.join(dir, `${name}.json`), 'utf8')) as BenchResult);
  }
  return out;
}

/** Replaces the text between the results markers with the figures of the latest full runs. */
export async function updateReadme(file: string, results: BenchResult[]): Promise<void> {
  const text = await readFile(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file} lacks the ${START} … ${END} markers`);
  const lines = [
    START,
    `Latest full runs on ${machineDescription()}; each benchmark's time (UTC), duration and commit in its first row.`,
    '',
    '| benchmark | figure | value | goal | |',
    '|---|---|---|---|---|',
    ...results.flatMap((r) =>
      r.figures.map(
        (f, i) =>
          `| ${i === 0 ? `${r.name} (${r.finishedAt.slice(0, 16).replace('T', ' ')}, ${typeof r.parameters.durationSeconds === 'number' ? r.parameters.durationSeconds : '?'} s${typeof r.parameters.commit === 'string' ? `, ${r.parameters.commit}` : ''})` : ''} | ${f.label} | ${cell(f.value)} ${f.unit} | ${f.goal ?? ''} | ${f.met === undefined ? '' : f.met ? 'met' : '**missed**'} |`
      )
    ),
    '',
    ...results.flatMap((r) => (r.notes.length > 0 ? [`**${r.name}**`, '', ...r.notes.map((n) => `- ${n}`), ''] : [])),
    END,
  ];
  await writeFile(file, text.slice(0, start) + lines.join('\n') + text.slice(end + END.length));
}
