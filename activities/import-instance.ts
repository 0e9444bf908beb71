/**
 * ImportInstance for one VM: adopt the task an earlier attempt created (import-idempotency.ts), or send
 * the request once, through a client that never retries on its own. User data is read here and never leaves
 * the activity.
 */
import type { EC2Client, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import { ImportInstanceCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { Presigner } from '../common/aws/clients';
import type { ImportInstanceInput, ImportInstanceResult, VmSpec } from '../common/contracts/migration';
import { FailureType } from '../common/failures';
import { activityLog } from './activity-context';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import { findEarlierImport, recordImportSend, resultOf } from './import-idempotency';
import { urlExpiry } from './url-expiry';
import { readUserData } from './user-data';

export interface Ec2ImportDeps {
  ec2: EC2Client;
  ec2NoRetry: EC2Client;
  presigner: Presigner;
  /** For the import marker (object-keys.ts importMarkerKey). */
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
  /** The worker's image roots: the user-data file must be inside them too (user-data.ts). */
  imageRoots?: readonly string[];
}

/** The ImportInstance request for a VM; user data is read here and never leaves the activity. */
export async function buildImportRequest(
  input: ImportInstanceInput,
  manifestUrl: string,
  imageRoots: readonly string[] = []
): Promise<ImportInstanceCommandInput> {
  const spec: VmSpec = input.spec;
  const groupIds = spec.securityGroups.filter((g) => g.startsWith('sg-'));
  const groupNames = spec.securityGroups.filter((g) => !g.startsWith('sg-'));
  return {
    // The SDK's enum knows only Windows; EC2 (and the old CLIs) also take Linux.
    Platform: (spec.platform ?? 'Linux') as ImportInstanceCommandInput['Platform'],
    Description: spec.description ?? spec.name,
    DryRun: input.dryRun || undefined,
    LaunchSpecification: {
      Architecture: spec.architecture,
      InstanceType: spec.instanceType as NonNullable<ImportInstanceCommandInput['LaunchSpecification']>['InstanceType'],
      Placement: spec.availabilityZone ? { AvailabilityZone: spec.availabilityZone } : undefined,
      SubnetId: spec.subnetId,
      PrivateIpAddress: spec.privateIp,
      GroupNames: groupNames.length > 0 ? groupNames : undefined,
      GroupIds: groupIds.length > 0 ? groupIds : undefined,
      Monitoring: spec.monitoring,
      InstanceInitiatedShutdownBehavior: spec.shutdownBehavior,
      UserData: spec.userDataFile ? { Data: await readUserData(spec.userDataFile, imageRoots) } : undefined,
    },
    DiskImages: [
      {
        Image: { Format: input.format, Bytes: input.imageBytes, ImportManifestUrl: manifestUrl },
        Volume: { Size: input.volumeSizeGib },
        Description: spec.description ?? spec.name,
      },
    ],
  };
}

export async function importInstance(deps: Ec2ImportDeps, input: ImportInstanceInput): Promise<ImportInstanceResult> {
  const vm = { batch: input.batch, vm: input.vm };
  let sentBefore: string[] = [];
  if (!input.dryRun) {
    const earlier = await findEarlierImport(deps, input);
    if (earlier.adopt) return earlier.adopt;
    sentBefore = earlier.sentBefore;
  }
  const expiry = await urlExpiry(deps.presigner, input.validUntil);
  const manifestUrl = await deps.presigner.presign(
    new GetObjectCommand({ Bucket: deps.bucket, Key: input.manifestKey }),
    expiry.expiresInSeconds
  );
  if (!input.dryRun) await recordImportSend(deps, input, sentBefore, manifestUrl);
  const request = await buildImportRequest(input, manifestUrl, deps.imageRoots);
  const operation = input.dryRun ? 'ImportInstance (DryRun)' : 'ImportInstance';
  return awsCall(
    { operation, service: 'EC2', bucket: deps.bucket },
    async (abortSignal) => {
      const { ConversionTask: task } = await deps.ec2NoRetry.send(new ImportInstanceCommand(request), { abortSignal });
      if (!task?.ConversionTaskId) {
        throw ApplicationFailure.retryable(
          'ImportInstance returned no conversion task; retrying (the retry adopts the task if EC2 created one).',
          FailureType.AwsUnavailable
        );
      }
      activityLog.info('conversion task created', {
        ...vm,
        conversionTaskId: task.ConversionTaskId,
        instanceId: task.ImportInstance?.InstanceId,
      });
      return resultOf(task, false);
    },
    (err) => {
      if (!input.dryRun || !isAwsError(err, 'DryRunOperation')) return undefined;
      activityLog.info('ImportInstance dry run succeeded', vm);
      return { value: { conversionTaskId: '', adopted: false } };
    }
  );
}
