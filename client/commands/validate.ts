/** `vmconvoy validate <csv>`: every row and every image (pre-flight), nothing uploaded. */
import type { VmconvoyConfig } from '../../common/config';
import { ExitError } from '../errors';
import type { InventoryResult } from '../inventory/read-inventory';
import { readInventory } from '../inventory/read-inventory';
import { awsTargetProblems } from '../inventory/aws-targets';
import { CSV_ARGUMENT, jsonOption } from '../options';
import { VALIDATE_VIEW } from '../output/problems';
import { onlineInventoryProblems } from '../online/online-checks';
import { cliConfig } from '../settings';
import type { CommandSpec } from './command';

export interface ValidateOptions {
  /** VMCONVOY_IMAGE_ROOTS: directories images may be read from. */
  imageRoots?: readonly string[];
  /** `--online`: also ask AWS, with this configuration (client/online/online-checks.ts). */
  online?: VmconvoyConfig;
}

export async function validateCommand(csv: string, opts: ValidateOptions = {}): Promise<InventoryResult> {
  const result = await readInventory(csv, { imageRoots: opts.imageRoots });
  // Online checks only for an inventory valid offline: every row has a spec, and AWS is asked once.
  if (!result.ok || !opts.online) return result;
  const targetErrors = await awsTargetProblems(result.rows, opts.online.aws);
  if (targetErrors.length > 0) return { ok: false, errors: targetErrors };
  const errors = await onlineInventoryProblems(result.rows, opts.online, { skipHint: 'validate without --online' });
  return errors.length > 0 ? { ok: false, errors } : result;
}

export const validateSpec: CommandSpec<{ json?: boolean; online?: boolean }, InventoryResult> = {
  name: 'validate',
  summary: 'check every row and every disk image of an inventory (pre-flight); nothing is uploaded or started',
  arguments: [CSV_ARGUMENT],
  options: [
    jsonOption('print {ok, rows} or {ok: false, errors: [{line, column, message}]}'),
    {
      flags: '--online',
      description:
        "also ask AWS with the worker's settings (read-only calls and ImportInstance with DryRun): zone, subnet, security groups, private IP",
    },
  ],
  examples: ['vmconvoy validate examples/inventory.csv', 'vmconvoy validate examples/inventory.csv --online'],
  run: ({ args: [csv], opts }, { env }) =>
    validateCommand(csv!, {
      imageRoots: env.VMCONVOY_IMAGE_ROOTS?.split(':').filter(Boolean) ?? [],
      online: opts.online ? cliConfig(env) : undefined,
    }),
  view: VALIDATE_VIEW,
  // The problems are the output; the exit code says there were some.
  exit: (result) => (result.ok ? undefined : new ExitError(1, '')),
};
