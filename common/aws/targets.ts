/**
 * Many accounts and Regions (issue 20): where one VM's AWS calls go. An inventory row may name an AWS
 * profile (credentials from the worker's shared config and credentials files) and a Region; either left
 * out is the worker's own. Only names cross the workflow boundary; the worker turns a profile name into
 * credentials inside its activities (common/aws/clients.ts), so no key ever enters a history.
 *
 * The conversion quota belongs to an AWS account in a Region, so the account ID behind a (profile, Region)
 * is resolved once per batch (STS GetCallerIdentity, activities/aws-account.ts) and names the quota
 * workflow (common/workflow-ids.ts quotaWorkflowId). Sandbox-safe: workflows import it.
 */

/** A row's choice: profile and Region names, each absent = the worker's own. */
export interface AwsTarget {
  profile?: string;
  region?: string;
}

/** The account behind a target, as STS named it, in the Region the target resolves to. */
export interface AwsAccount {
  accountId: string;
  region: string;
  /** The profile name, when the row named one (absent = the worker's own credentials). */
  profile?: string;
}

/**
 * A Region name as AWS writes them (us-east-1, eu-central-2, ap-southeast-5, us-gov-west-1, cn-north-1):
 * https://docs.aws.amazon.com/general/latest/gr/rande.html. The shape only: a Region the account cannot
 * use is refused by AWS itself.
 */
export const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * A profile name as the shared config file takes it: a section name `[profile NAME]` cannot hold `]`,
 * whitespace or the comment characters; 1-64 characters of a conservative set keeps it a safe name in
 * histories and messages.
 */
export const PROFILE_PATTERN = /^[A-Za-z0-9._@+=,-]{1,64}$/;

/** The target a VM's spec names (undefined when it names neither: the worker's own everything). */
export function targetOfSpec(spec: { region?: string; awsProfile?: string }): AwsTarget | undefined {
  if (spec.region === undefined && spec.awsProfile === undefined) return undefined;
  return {
    ...(spec.awsProfile === undefined ? {} : { profile: spec.awsProfile }),
    ...(spec.region === undefined ? {} : { region: spec.region }),
  };
}

/** One key per (profile, Region) as the row names them: `<profile or ->@<region or ->`. */
export function targetKey(target: AwsTarget | undefined): string {
  return `${target?.profile ?? '-'}@${target?.region ?? '-'}`;
}

/** How status and reports write an account in a Region. */
export function accountLabel(account: AwsAccount): string {
  return `${account.accountId}/${account.region}`;
}
