/**
 * The AWS account behind a row's profile and Region (issue 20): STS GetCallerIdentity with that profile's
 * credentials, asked by the fleet once per (profile, Region) per batch. Only the profile's name comes in
 * and only the account ID goes out: the credentials stay in the worker.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { AwsClientPool } from '../common/aws/client-pool';
import { AwsTargetError } from '../common/aws/client-pool';
import type { AwsAccount, AwsTarget } from '../common/aws/targets';
import { FailureType } from '../common/failures';
import { awsFailure } from './aws-call';
import { getClient } from '@temporalio/activity';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { accountLabel } from '../common/aws/targets';
import { quotaWorkflowId } from '../common/workflow-ids';
import { setQuotaLimitSignal } from '../workflows/messages';

/** A row's target this worker cannot serve, as the non-retryable failure that names what to fix. */
export function targetFailure(err: unknown): unknown {
  return err instanceof AwsTargetError
    ? ApplicationFailure.nonRetryable(err.message, FailureType.AwsTargetInvalid)
    : err;
}

export function isTargetFailure(err: unknown): boolean {
  return err instanceof ApplicationFailure && err.type === FailureType.AwsTargetInvalid;
}

export interface ResolveAwsAccountInput {
  target?: AwsTarget;
  /**
   * A batch started with --max-conversions: the account's conversion quota gets this limit (started with it
   * when it does not run yet), as `start` did for the one quota it knew before accounts.
   */
  quotaLimit?: { limit: number; taskQueue: string };
}

export async function resolveAwsAccount(pool: AwsClientPool, input: ResolveAwsAccountInput): Promise<AwsAccount> {
  let account: AwsAccount;
  try {
    account = await pool.accountOf(input.target);
  } catch (err) {
    if (err instanceof AwsTargetError) throw targetFailure(err);
    const profile = input.target?.profile;
    throw awsFailure(err, { operation: `STS GetCallerIdentity${profile ? ` with profile ${profile}` : ''}` });
  }
  if (input.quotaLimit) {
    const workflowId = quotaWorkflowId(account.accountId, account.region);
    await getClient().workflow.signalWithStart('conversionQuotaWorkflow', {
      workflowId,
      taskQueue: input.quotaLimit.taskQueue,
      args: [{ limit: input.quotaLimit.limit }],
      signal: setQuotaLimitSignal,
      signalArgs: [input.quotaLimit.limit],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      staticSummary: `conversion slots for ${accountLabel(account)}`,
    });
  }
  return account;
}
