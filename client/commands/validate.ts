/** `vmconvoy validate <csv>`: every row and every image (pre-flight), nothing uploaded. */
import { ExitError } from '../errors';
import type { InventoryResult } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';
import { CSV_ARGUMENT, jsonOption } from '../options';
import { VALIDATE_VIEW } from '../output/problems';
import type { CommandSpec } from './command';

export interface ValidateOptions {
  /** VMCONVOY_IMAGE_ROOTS: directories images may be read from. */
  imageRoots?: readonly string[];
}

export function validateCommand(csv: string, opts: ValidateOptions = {}): Promise<InventoryResult> {
  return readInventory(csv, { imageRoots: opts.imageRoots });
}

export const validateSpec: CommandSpec<{ json?: boolean }, InventoryResult> = {
  name: 'validate',
  summary: 'check every row and every disk image of an inventory (pre-flight); nothing is uploaded or started',
  arguments: [CSV_ARGUMENT],
  options: [jsonOption('print {ok, rows} or {ok: false, errors: [{line, column, message}]}')],
  examples: ['vmconvoy validate examples/inventory.csv'],
  run: ({ args: [csv] }, { env }) =>
    validateCommand(csv!, { imageRoots: env.VMCONVOY_IMAGE_ROOTS?.split(':').filter(Boolean) ?? [] }),
  view: VALIDATE_VIEW,
  // The problems are the output; the exit code says there were some.
  exit: (result) => (result.ok ? undefined : new ExitError(1, '')),
};
