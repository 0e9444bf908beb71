/**
 * ImportInstance for one VM: adopt the task an earlier attempt created (import-idempotency.ts), or send
 * the request once, through a client that never retries on its own. User data is read here and never leaves
 * the activity.
 *
 * Before it sends, an earlier run's instance (the VM's resource record, vm-resources.ts) is adopted when it
 * is intact (conversion completed, stopped, matching the inventory, converted from the same uploaded bytes)
 * or terminated: a `retry` never leaves a second instance behind. What it creates or adopts is recorded at
 * once and the instance tagged as this VM's as soon as EC2 lists it, long before validation.
 */
import type { EC2Client, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import { ImportInstanceCommand } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { Presigner } from '../common/aws/clients';
import type { VmSpec } from '../common/contracts/migration';
import type { ImportInstanceInput, ImportInstanceResult } from '../common/contracts/activity-io';
import { FailureType } from '../common/failures';
import { activityLog, currentContext } from './activity-context';
import { awsCall } from './aws-call';
import { isAwsError } from './aws-error-codes';
import { settleEarlierRuns } from './earlier-runs';
import {
  DEFAULT_LISTING_WAIT_SECONDS,
  findEarlierImport,
  recordImportSend,
  recordSendRefused,
  resultOf,
} from './import-idempotency';
import { urlExpiry } from './url-expiry';
import { readUserData } from './user-data';
import { vmTags } from './validate';
import { imageFingerprint, tagNewInstance, updateResourceRecord } from './vm-resources';

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

/** Tagging a new instance waits at most this long for EC2 to list it; validation tags it otherwise. */
const TAG_WAIT_MAX_SECONDS = 60;

/** Records what an import created or adopted, then tags its instance as this VM's. */
async function recorded(
  deps: Ec2ImportDeps,
  input: ImportInstanceInput,
  result: ImportInstanceResult,
  imageFingerprint: string | undefined,
  /** False for a task that already failed: EC2 removed its instance, nothing to tag. */
  live = true
): Promise<ImportInstanceResult> {
  if (!result.conversionTaskId) return result;
  await updateResourceRecord(deps, input, {
    add: {
      conversionTaskId: result.conversionTaskId,
      instanceId: result.instanceId,
      volumeId: result.volumeId,
      runId: currentContext()?.info.workflowExecution?.runId,
      at: new Date().toISOString(),
      imageFingerprint,
    },
  });
  if (result.instanceId && live) {
    const waitSeconds = Math.min(input.listingWaitSeconds ?? DEFAULT_LISTING_WAIT_SECONDS, TAG_WAIT_MAX_SECONDS);
    await tagNewInstance(deps.ec2, result.instanceId, vmTags(input), waitSeconds * 1000);
  }
  return result;
}

export async function importInstance(deps: Ec2ImportDeps, input: ImportInstanceInput): Promise<ImportInstanceResult> {
  let sentBefore: string[] = [];
  let fingerprint: string | undefined;
  if (!input.dryRun) {
    fingerprint = await imageFingerprint(
      deps,
      input,
      `${input.format} ${input.imageBytes} B → ${input.volumeSizeGib} GiB`
    );
    const earlier = await findEarlierImport(deps, input);
    if (earlier.adopt) {
      const live = earlier.adoptedState === 'active' || earlier.adoptedState === 'completed';
      return recorded(deps, input, earlier.adopt, fingerprint, live);
    }
    sentBefore = earlier.sentBefore;
    const kept = await settleEarlierRuns(deps, input, fingerprint);
    if (kept) return recorded(deps, input, kept, fingerprint);
  }
  const expiry = await urlExpiry(deps.presigner, input.validUntil);
  const manifestUrl = await deps.presigner.presign(
    new GetObjectCommand({ Bucket: deps.bucket, Key: input.manifestKey }),
    expiry.expiresInSeconds
  );
  // The request first (it reads the user data, which may fail): the marker says a send is about to go out.
  const request = await buildImportRequest(input, manifestUrl, deps.imageRoots);
  if (!input.dryRun) await recordImportSend(deps, input, sentBefore, manifestUrl);
  const operation = input.dryRun ? 'ImportInstance (DryRun)' : 'ImportInstance';
  const result = await sendImport(deps, input, request, operation).catch(async (err: unknown) => {
    if (!input.dryRun && isRefusal(err)) await recordSendRefused(deps, input, manifestUrl);
    throw err;
  });
  return input.dryRun ? result : recorded(deps, input, result, fingerprint);
}

/** Failure types of an answer that created nothing for sure (common/failures.ts). */
const REFUSALS: readonly string[] = [
  FailureType.AwsThrottled,
  FailureType.ConversionQuotaExceeded,
  FailureType.AwsInvalidParameter,
  FailureType.AwsRequestFailed,
  FailureType.AwsAuth,
];

function isRefusal(err: unknown): boolean {
  return err instanceof ApplicationFailure && REFUSALS.includes(err.type ?? '');
}

function sendImport(
  deps: Ec2ImportDeps,
  input: ImportInstanceInput,
  request: ImportInstanceCommandInput,
  operation: string
): Promise<ImportInstanceResult> {
  const vm = { batch: input.batch, vm: input.vm };
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
