/**
 * The online checks: what AWS itself says about a VM's settings before any byte is uploaded, with the
 * worker's credentials and calls that change nothing:
 * - the network (network-checks.ts: zone, subnet, security groups, private IP);
 * - ImportInstance with DryRun=true, the request the import would send (user data included) with the
 *   manifest URL it would carry. DryRun "checks whether you have the required permissions for the action,
 *   without actually making the request" (API reference, ImportInstance, DryRun): EC2 does not read the
 *   manifest then (aws/aws-sdk#808: DryRun checks permissions only), so the URL may name a manifest that is
 *   never written and nothing needs uploading. `DryRunOperation` = it would succeed; `UnauthorizedOperation`
 *   (or any other refusal) is reported with what to do.
 * The activity (onlineChecks, on the AWS API queue) runs them for one VM in a dry run; the CLI runs the
 * same functions for a whole inventory (client/online/).
 */
import type { EC2Client, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import { ImportInstanceCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { Presigner } from '../common/aws/clients';
import type { ImportInstanceInput, ObjectLocation } from '../common/contracts/activity-io';
import type { ImportFormat, VmSpec } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { manifestKey } from '../common/object-keys';
import { activityLog } from './activity-context';
import { awsCall } from './aws-call';
import { asAwsLike, awsErrorName, CREDENTIALS_EXPIRED, THROTTLING } from './aws-error-codes';
import { buildImportRequest } from './import-instance';
import type { OnlineProblem } from './network-checks';
import { checkNetwork } from './network-checks';

export interface OnlineChecksDeps {
  ec2: EC2Client;
  presigner: Presigner;
  bucket: string;
  keyPrefix: string;
  region: string;
  /** The worker's image roots: the user-data file must be inside them (user-data.ts). */
  imageRoots?: readonly string[];
}

export interface OnlineChecksInput extends ObjectLocation {
  spec: VmSpec;
  format: ImportFormat;
  imageBytes: number;
  volumeSizeGib: number;
}

export interface OnlineChecksResult {
  /** What was asked, for the history and logs. */
  checks: string[];
}

/** The presigned URL the dry run's ImportInstance carries: where the manifest would be; nothing is read from it. */
const DRY_RUN_URL_SECONDS = 3600;

/** The CSV column an ImportInstance refusal is most likely about (none: the row as a whole). */
function columnOf(code: string, message: string): string | undefined {
  if (/^InvalidSubnetID/.test(code) || /subnet/i.test(message)) return 'subnet_id';
  if (/^InvalidGroup/.test(code) || /security group/i.test(message)) return 'security_groups';
  if (/instance ?type|requested instance/i.test(message)) return 'instance_type';
  if (/zone/i.test(message)) return 'availability_zone';
  if (/ip ?address/i.test(message)) return 'private_ip';
  if (/architecture/i.test(message)) return 'architecture';
  return undefined;
}

/**
 * ImportInstance with DryRun for `request`: undefined when EC2 answers DryRunOperation, the problem when it
 * refuses the request (4xx: permissions, parameters, not offered). Throttling, expired credentials and
 * 5xx/network failures throw (classified by awsCall): the answer says nothing about the VM.
 */
export async function importDryRun(
  ec2: EC2Client,
  region: string,
  request: ImportInstanceCommandInput,
  line: number
): Promise<OnlineProblem | undefined> {
  return awsCall(
    { operation: 'ImportInstance (DryRun)', service: 'EC2' },
    async (abortSignal) => {
      await ec2.send(new ImportInstanceCommand({ ...request, DryRun: true }), { abortSignal });
      // Never an answer to a DryRun: a success would have created a task.
      return {
        line,
        message: `ImportInstance with DryRun=true created something in ${region}: the endpoint does not honour DryRun (AWS_ENDPOINT_URL_EC2?)`,
      };
    },
    (err) => {
      const code = awsErrorName(err) ?? '';
      if (code === 'DryRunOperation') return { value: undefined };
      const e = asAwsLike(err);
      const status = e.$metadata?.httpStatusCode ?? 0;
      if (status < 400 || status >= 500 || status === 429 || THROTTLING.has(code) || CREDENTIALS_EXPIRED.has(code))
        return undefined;
      const said = `${code}: ${e.message ?? ''}`.trim();
      if (code === 'UnauthorizedOperation' || code === 'AuthFailure')
        return {
          value: {
            line,
            message: `ImportInstance refused in ${region} (${said}): grant the worker's credentials ec2:ImportInstance (README, "IAM permissions")`,
          },
        };
      if (code === 'InvalidAction' || code === 'UnsupportedOperation' || code === 'OptInRequired')
        return {
          value: {
            line,
            message: `ImportInstance is not offered in ${region} for this account (${said}): import into a Region that offers VM Import's ImportInstance`,
          },
        };
      return {
        value: { line, column: columnOf(code, e.message ?? ''), message: `ImportInstance (DryRun) refused: ${said}` },
      };
    }
  );
}

/** The dry run's ImportInstance request for one VM: the real one, with the URL of a manifest never written. */
export async function dryRunRequest(
  deps: Pick<OnlineChecksDeps, 'presigner' | 'bucket' | 'keyPrefix' | 'imageRoots'>,
  input: OnlineChecksInput
): Promise<ImportInstanceCommandInput> {
  const url = await deps.presigner.presign(
    new GetObjectCommand({ Bucket: deps.bucket, Key: manifestKey(deps.keyPrefix, input) }),
    DRY_RUN_URL_SECONDS
  );
  const importInput: ImportInstanceInput = { ...input, manifestKey: '', validUntil: '', dryRun: true };
  return buildImportRequest(importInput, url, deps.imageRoots);
}

/** The activity: every online check for one VM; a refusal fails the VM (not retried: the inventory must change). */
export async function onlineChecks(deps: OnlineChecksDeps, input: OnlineChecksInput): Promise<OnlineChecksResult> {
  const problems = await awsCall(
    { operation: 'DescribeAvailabilityZones/DescribeSubnets/DescribeSecurityGroups', service: 'EC2' },
    () => checkNetwork(deps.ec2, deps.region, [{ line: 0, spec: input.spec }])
  );
  const refused = await importDryRun(deps.ec2, deps.region, await dryRunRequest(deps, input), 0);
  if (refused) problems.push(refused);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `${input.vm}: ${problems.map((p) => (p.column ? `${p.column}: ${p.message}` : p.message)).join('; ')}`,
      FailureType.AwsInvalidParameter
    );
  }
  activityLog.info('online checks passed', { batch: input.batch, vm: input.vm });
  return {
    checks: [
      'availability zone, subnet, security groups and private IP (DescribeAvailabilityZones/Subnets/SecurityGroups)',
      'ImportInstance with DryRun: DryRunOperation',
    ],
  };
}
