/**
 * Issue 20: the rows' `aws_profile` and `region` against this host's AWS setup, before anything starts:
 * a profile must be defined in the shared config or credentials file (the SDK's own reader; the message
 * names both files), and a Region other than AWS_REGION needs its staging bucket (VM Import reads the
 * image from a bucket in the Region it imports into). The workers check the same at run time.
 */
import { AwsTargetError, bucketFor, checkProfile } from '../../common/aws/client-pool';
import type { AwsConfig } from '../../common/config';
import type { InventoryRow } from '../../common/contracts/fleet';
import type { InventoryProblem } from './read-inventory';

export async function awsTargetProblems(rows: readonly InventoryRow[], aws: AwsConfig): Promise<InventoryProblem[]> {
  const problems: InventoryProblem[] = [];
  const profiles = new Map<string, Promise<string | undefined>>();
  for (const { line, spec } of rows) {
    if (spec.awsProfile !== undefined) {
      const profile = spec.awsProfile;
      if (!profiles.has(profile))
        profiles.set(
          profile,
          checkProfile(aws, profile).then(
            () => undefined,
            (err: unknown) =>
              err instanceof AwsTargetError ? err.message : `profile ${profile}: ${(err as Error).message}`
          )
        );
      const message = await profiles.get(profile)!;
      if (message) problems.push({ line, column: 'aws_profile', message });
    }
    if (spec.region !== undefined) {
      try {
        bucketFor(aws, spec.region);
      } catch (err) {
        problems.push({ line, column: 'region', message: (err as Error).message });
      }
    }
  }
  return problems;
}
