/** `vmconvoy validate <csv>`: every row and every image, nothing uploaded. */
import type { InventoryResult } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';

export async function validateCommand(csv: string, imageRoots: string[] = []): Promise<InventoryResult> {
  return readInventory(csv, { imageRoots });
}

export function formatProblems(csv: string, result: InventoryResult): string {
  if (result.ok) return `${csv}: ${result.rows.length} VMs, all valid`;
  return result.errors.map((e) => `${csv}:${e.line}${e.column ? ` [${e.column}]` : ''}: ${e.message}`).join('\n');
}
