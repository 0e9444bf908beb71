/**
 * Workflow entry point for the worker's bundle: every workflow type vmconvoy registers.
 */
export { migrateVmWorkflow } from './migrate-vm';
export { conversionQuotaWorkflow } from './conversion-quota';
export { migrateFleetWorkflow } from './migrate-fleet';
export { notifyWorkflow } from './notify';
export { rollbackBatchWorkflow } from './rollback-batch';
export { importDataDiskWorkflow } from './data-disk-workflow';
