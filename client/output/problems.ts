/** Inventory problems as one block, `file.csv:LINE [column]: what to fix`, sorted by line. */
import type { InventoryResult } from '../inventory/read-inventory';
import type { Paint } from './color';
import { paint } from './color';
import type { View } from './printer';

export function renderProblems(csv: string, result: InventoryResult, p: Paint = paint(false)): string {
  if (result.ok) {
    const waves = new Set(result.rows.map((r) => r.spec.wave)).size;
    const notes = (result.notes ?? []).map((n) => `${csv}:${n.line}${n.column ? ` [${n.column}]` : ''}: ${n.message}`);
    return [
      ...notes,
      `${p.green('✔')} ${csv}: ${result.rows.length} VMs in ${waves} wave${waves === 1 ? '' : 's'}, every row and image valid`,
    ].join('\n');
  }
  const lines = result.errors.map((e) => `${csv}:${e.line}${e.column ? ` [${e.column}]` : ''}: ${e.message}`);
  const n = result.errors.length;
  return [...lines, p.red(`✖ ${n} problem${n === 1 ? '' : 's'} in ${csv}; nothing was started`)].join('\n');
}

/** `validate`: the problems, or that every row and image is valid; --json prints the result itself. */
export const VALIDATE_VIEW: View<InventoryResult, { args: string[] }> = {
  text: (result, p, { args: [csv = ''] }) => renderProblems(csv, result, p),
};
