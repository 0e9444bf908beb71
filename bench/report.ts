/** The machine a run happened on, and the results section of bench/README.md. */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import type { BenchResult } from './types';

export function machineDescription(): string {
  const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
}

const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

function cell(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Replaces the text between the results markers with the figures of this (full) run. */
export async function updateReadme(file: string, results: BenchResult[]): Promise<void> {
  const text = await readFile(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file} lacks the ${START} … ${END} markers`);
  const lines = [
    START,
    `Latest full run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machineDescription()}.`,
    '',
    '| benchmark | figure | value | goal | |',
    '|---|---|---|---|---|',
    ...results.flatMap((r) =>
      r.figures.map((f) => `| ${r.name} | ${f.label} | ${cell(f.value)} ${f.unit} | ${f.goal ?? ''} | ${f.met === undefined ? '' : f.met ? 'met' : '**missed**'} |`)
    ),
    '',
    ...results.flatMap((r) => (r.notes.length > 0 ? [`**${r.name}**`, '', ...r.notes.map((n) => `- ${n}`), ''] : [])),
    END,
  ];
  await writeFile(file, text.slice(0, start) + lines.join('\n') + text.slice(end + END.length));
}
