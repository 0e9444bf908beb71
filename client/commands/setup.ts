/**
 * `vmconvoy setup`: prepares an existing Temporal namespace (self-hosted or Cloud) for vmconvoy. It
 * registers the MigrationBatch, MigrationVm and MigrationPhase Keyword search attributes and sets a
 * retention long enough to report on a migration weeks later. Running it again changes nothing.
 */
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_NAMES } from '../../workflows/search-attributes';
import { jsonOption, positiveInt } from '../options';
import { SETUP_VIEW } from '../output/messages';
import type { CommandSpec } from './command';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

export interface SetupResult {
  namespace: string;
  added: string[];
  alreadyPresent: string[];
  retentionDays: number;
}

export async function setupCommand(
  connection: Connection,
  namespace: string,
  retentionDays: number
): Promise<SetupResult> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const present = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !present.has(name));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, KEYWORD])),
    });
  }
  await connection.workflowService.updateNamespace({
    namespace,
    config: { workflowExecutionRetentionTtl: msToTs(retentionDays * 24 * 3600 * 1000) },
  });
  return {
    namespace,
    added: missing,
    alreadyPresent: SEARCH_ATTRIBUTE_NAMES.filter((n) => present.has(n)),
    retentionDays,
  };
}

export const setupSpec: CommandSpec<{ retentionDays: number; json?: boolean }, SetupResult> = {
  name: 'setup',
  summary:
    "register vmconvoy's search attributes (MigrationBatch, MigrationVm, MigrationPhase) and set the retention on an existing namespace (idempotent)",
  options: [
    {
      flags: '--retention-days <days>',
      description: 'how long closed workflows stay readable',
      default: 30,
      parse: positiveInt('--retention-days'),
    },
    jsonOption(),
  ],
  examples: [
    'TEMPORAL_ADDRESS=temporal.example.com:7233 TEMPORAL_NAMESPACE=migrations vmconvoy setup --retention-days 60',
  ],
  async run({ opts }, ctx) {
    const { connection, namespace } = await ctx.connection();
    return setupCommand(connection, namespace, opts.retentionDays);
  },
  view: SETUP_VIEW,
};
