/** `vmconvoy validate <csv>`: every row and every image (pre-flight), nothing uploaded. */
import type { InventoryResult } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';

export interface ValidateOptions {
  /** VMCONVOY_IMAGE_ROOTS: directories images may be read from. */
  imageRoots?: readonly string[];
}

export function validateCommand(csv: string, opts: ValidateOptions = {}): Promise<InventoryResult> {
  return readInventory(csv, { imageRoots: opts.imageRoots });
}
