/**
 * The fleet's accounts (issue 20): each row's (profile, Region) → the AWS account behind it, asked once per
 * batch (resolveAwsAccount: STS GetCallerIdentity) and carried across continue-as-new, and the conversion
 * quotas those accounts name (`vmconvoy-quota/<account>/<region>`). A fleet started before the patch keeps
 * the one quota its input names.
 */
import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { AwsAccount } from '../common/aws/targets';
import { targetKey, targetOfSpec } from '../common/aws/targets';
import type { FleetInput } from '../common/contracts/fleet';
import type { VmSpec } from '../common/contracts/migration';
import { quotaWorkflowId } from '../common/workflow-ids';
import type { AwsApiActivities } from './activity-profiles';
import { fastCallOptions } from './activity-profiles';
import { FLEET_AWS_ACCOUNTS_PATCH } from './versions';

/** Why a row has no account: its VM fails with this, before any upload. */
export interface AccountProblem {
  type: string;
  message: string;
}

export class FleetAccounts {
  /** Only a fleet that records the marker resolves accounts (and emits the commands). */
  readonly enabled: boolean;
  /** Accounts known so far, by target key (common/aws/targets.ts targetKey). */
  readonly known: Map<string, AwsAccount>;
  private readonly resolving = new Map<string, Promise<AwsAccount | AccountProblem>>();
  private readonly identity: AwsApiActivities;

  constructor(
    private readonly input: FleetInput,
    /** The conversion limit to set on a newly met account's quota (when the batch set one). */
    private readonly conversionLimit: () => number
  ) {
    this.enabled = patched(FLEET_AWS_ACCOUNTS_PATCH);
    this.known = new Map(Object.entries(input.accounts ?? {}));
    this.identity = proxyActivities<AwsApiActivities>({
      ...fastCallOptions('resolve the AWS account (STS GetCallerIdentity)', undefined),
      // A target that cannot be resolved in minutes fails its VMs with the reason, not the batch.
      scheduleToCloseTimeout: '5 minutes',
      taskQueue: input.settings.awsApiTaskQueue,
    });
  }

  /** The account of a row, or why it has none (the VM then fails with that reason). */
  accountFor(spec: VmSpec): Promise<AwsAccount | AccountProblem> {
    const target = targetOfSpec(spec);
    const key = targetKey(target);
    const known = this.known.get(key);
    if (known) return Promise.resolve(known);
    let pending = this.resolving.get(key);
    if (!pending) {
      pending = this.identity
        .resolveAwsAccount({
          ...(target ? { target } : {}),
          ...(this.input.conversionLimitSet
            ? { quotaLimit: { limit: this.conversionLimit(), taskQueue: workflowInfo().taskQueue } }
            : {}),
        })
        .then(
          (account) => {
            this.known.set(key, account);
            return account;
          },
          (err: unknown): AccountProblem => {
            const cause = (err as { cause?: { type?: string; message?: string } }).cause;
            return {
              type: cause?.type ?? 'AwsRequestFailed',
              message: `the AWS account of ${target?.profile ? `profile ${target.profile}` : "the worker's credentials"} in ${target?.region ?? "the worker's Region"} could not be resolved: ${cause?.message ?? (err as Error).message}`,
            };
          }
        );
      this.resolving.set(key, pending);
    }
    return pending;
  }

  /** Where a row's VM goes: its account (or why it has none) and the quota it asks for slots. */
  async placeOf(spec: VmSpec): Promise<{ account?: AwsAccount; problem?: AccountProblem; quotaId: string }> {
    if (!this.enabled) return { quotaId: this.input.quotaWorkflowId };
    const resolved = await this.accountFor(spec);
    return 'accountId' in resolved
      ? { account: resolved, quotaId: quotaWorkflowId(resolved.accountId, resolved.region) }
      : { problem: resolved, quotaId: this.input.quotaWorkflowId };
  }

  /** Every account+Region quota this batch uses so far (one quota before accounts). */
  quotaIds(): string[] {
    return this.enabled
      ? [...new Set([...this.known.values()].map((a) => quotaWorkflowId(a.accountId, a.region)))]
      : [this.input.quotaWorkflowId];
  }
}
