/**
 * Inventory problems as one block, `file.csv:LINE [column]: what to fix`, sorted by line; then what the look
 * inside each guest found (`file.csv:LINE name: inspection ok: Ubuntu 22.04.4 LTS, kernel ...`), whose
 * warnings do not stop the batch.
 */
import { inspectionLine } from '../../activities/guest/row-checks';
import type { InventoryResult } from '../inventory/read-inventory';
import type { Paint } from './color';
import { paint } from './color';
import type { View } from './printer';

function inspectionLines(csv: string, result: InventoryResult, p: Paint): string[] {
  return (result.inspections ?? []).map(({ line, vm, inspection }) => {
    const text = `${csv}:${line}${vm ? ` ${vm}` : ''}: ${inspectionLine(inspection)}`;
    return inspection.verdict === 'ok' ? text : inspection.verdict === 'refuse' ? p.red(text) : p.yellow(text);
  });
}

export function renderProblems(csv: string, result: InventoryResult, p: Paint = paint(false)): string {
  const guests = inspectionLines(csv, result, p);
  if (result.ok) {
    const waves = new Set(result.rows.map((r) => r.spec.wave)).size;
    const warned = (result.warnings ?? []).length;
    const notes = (result.notes ?? []).map((n) => `${csv}:${n.line}${n.column ? ` [${n.column}]` : ''}: ${n.message}`);
    const verdict = `${p.green('✔')} ${csv}: ${result.rows.length} VMs in ${waves} wave${waves === 1 ? '' : 's'}, every row and image valid${warned ? ` (${warned} warning${warned === 1 ? '' : 's'} above)` : ''}`;
    return [...guests, ...notes, verdict].join('\n');
  }
  const lines = result.errors.map((e) => `${csv}:${e.line}${e.column ? ` [${e.column}]` : ''}: ${e.message}`);
  const n = result.errors.length;
  return [...guests, ...lines, p.red(`✖ ${n} problem${n === 1 ? '' : 's'} in ${csv}; nothing was started`)].join('\n');
}

/** `validate`: the problems, or that every row and image is valid; --json prints the result itself. */
export const VALIDATE_VIEW: View<InventoryResult, { args: string[] }> = {
  text: (result, p, { args: [csv = ''] }) => renderProblems(csv, result, p),
};
