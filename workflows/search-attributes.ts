/**
 * Search attributes vmconvoy sets on every workflow, so operators can filter the Temporal Web UI by batch,
 * VM and phase. Keyword type: exact-match filters. Values are names and phases only, never secrets
 * (search attributes skip the payload codec).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const migrationBatchKey = defineSearchAttributeKey('MigrationBatch', SearchAttributeType.KEYWORD);
export const migrationVmKey = defineSearchAttributeKey('MigrationVm', SearchAttributeType.KEYWORD);
export const migrationPhaseKey = defineSearchAttributeKey('MigrationPhase', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTE_NAMES = [migrationBatchKey.name, migrationVmKey.name, migrationPhaseKey.name] as const;
