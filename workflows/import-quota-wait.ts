/**
 * ImportInstance through EC2's own concurrency limit: an answer of ResourceLimitExceeded (too many imports
 * running in this account and Region, whoever started them) is waited out, visibly, until the VM's deadline.
 */
import { ApplicationFailure, sleep } from '@temporalio/workflow';
import type { ImportInstanceInput, ImportInstanceResult } from '../common/contracts/activity-io';
import type { MigrationSettings } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { importActivities } from './activity-profiles';
import { errorType } from './vm-outcome';
import type { VmStatusTracker } from './vm-status';

export /** ImportInstance; on ResourceLimitExceeded (too many imports in this account+region) wait and try again, visibly. */
async function importWithQuotaWait(
  input: ImportInstanceInput,
  settings: MigrationSettings,
  deadline: number,
  tracker: VmStatusTracker
): Promise<ImportInstanceResult> {
  for (;;) {
    try {
      return await importActivities(settings).importInstance(input);
    } catch (err) {
      if (errorType(err) !== FailureType.ConversionQuotaExceeded) throw err;
      if (Date.now() + settings.quotaRetrySeconds * 1000 > deadline) {
        throw ApplicationFailure.nonRetryable(
          'EC2 kept refusing the import (ResourceLimitExceeded) until the VM deadline',
          FailureType.DeadlineExceeded
        );
      }
      tracker.update({
        retries: tracker.status.retries + 1,
        statusMessage: 'waiting: too many imports running (ResourceLimitExceeded)',
      });
      await sleep(settings.quotaRetrySeconds * 1000, { summary: 'wait for EC2 import quota' });
    }
  }
}
