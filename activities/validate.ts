/**
 * After conversion: the instance EC2 made must be what the inventory asked for (stopped, architecture, type,
 * platform, placement, one root volume of the right size), tagged for the operator, and optionally boot to
 * status ok once. Every mismatch is listed in one non-retryable ValidationFailed.
 *
 * The boot check never leaves the instance running: it stops it in a `finally` (also when the activity is
 * cancelled), and an attempt that finds the instance running (an earlier attempt died mid-check) stops it
 * before it validates. Cleanup on the failure and cancel paths stops it too (cleanup.ts).
 */
import type { EC2Client, Instance, Tag } from '@aws-sdk/client-ec2';
import {
  CreateTagsCommand,
  DescribeInstanceStatusCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  StartInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { VmSpec } from '../common/contracts/migration';
import { dataDiskDevice } from '../common/contracts/migration';
import type { ValidateInput, ValidateResult } from '../common/contracts/activity-io';
import { FailureType } from '../common/failures';
import { activityLog, heartbeat, sleepMs, throwIfCancelled } from './activity-context';
import { awsCall } from './aws-call';
import {
  ROOT_DEVICE,
  describeInstance,
  isBootedImport,
  stopInstance,
  taggedForVm,
  waitForInstanceState,
} from './vm-resources';

export { ROOT_DEVICE } from './vm-resources';

export interface ValidateDeps {
  ec2: EC2Client;
  /** Interval between status checks during the boot check. @default 10 s */
  pollIntervalMs?: number;
}

function failed(instanceId: string, problems: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `Imported instance ${instanceId} does not match the inventory: ${problems.join('; ')}. Inspect it in the EC2 console; fix the inventory row or the image and run the VM again.`,
    FailureType.ValidationFailed
  );
}

function call<T>(operation: string, fn: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  return awsCall({ operation, service: 'EC2' }, fn);
}

/**
 * An earlier attempt of this activity that died during the boot check (worker killed, activity timed out)
 * left the instance running: stop it and wait, so this attempt validates the stopped instance the import
 * promised instead of failing on `running`.
 */
async function stopLeftRunning(deps: ValidateDeps, input: ValidateInput, instance: Instance): Promise<Instance> {
  const stopping = instance.State?.Name === 'stopping';
  if (!stopping && !(isBootedImport(instance) && taggedForVm(instance, input))) return instance;
  const { instanceId } = input;
  activityLog.warn('instance found running (an earlier boot check was interrupted); stopping it first', {
    batch: input.batch,
    vm: input.vm,
    instanceId,
  });
  if (!stopping) await stopInstance(deps.ec2, instanceId);
  const stopTimeoutMs = Math.max(300, input.bootCheckTimeoutSeconds) * 1000;
  await waitForInstanceState(deps.ec2, instanceId, 'stopped', stopTimeoutMs, deps.pollIntervalMs ?? 10_000);
  return (await describeInstance(deps.ec2, instanceId)) ?? instance;
}

/** What differs between the instance and the spec (empty = matches). Pure. */
export function instanceMismatches(
  instance: Instance,
  spec: VmSpec,
  /** The VM's data volumes, attached at /dev/sdf, /dev/sdg, ... in this order (issue 19). */
  dataVolumeIds: readonly string[] = []
): string[] {
  const problems: string[] = [];
  const expect = (what: string, actual: string | undefined, wanted: string | undefined): void => {
    if (wanted !== undefined && actual !== wanted) problems.push(`${what} is ${actual ?? 'unset'}, expected ${wanted}`);
  };
  expect('state', instance.State?.Name, 'stopped');
  expect('architecture', instance.Architecture, spec.architecture);
  expect('instance type', instance.InstanceType, spec.instanceType);
  // EC2 returns `windows` (the SDK's type says `Windows`); absent means Linux.
  expect('platform', (instance.Platform ?? 'linux').toLowerCase(), spec.platform === 'Windows' ? 'windows' : 'linux');
  expect('subnet', instance.SubnetId, spec.subnetId);
  expect('availability zone', instance.Placement?.AvailabilityZone, spec.availabilityZone);
  expect('private IP', instance.PrivateIpAddress, spec.privateIp);
  const groups = new Set((instance.SecurityGroups ?? []).flatMap((g) => [g.GroupName, g.GroupId]).filter(Boolean));
  const missing = spec.securityGroups.filter((g) => !groups.has(g));
  if (missing.length > 0) problems.push(`security groups ${missing.join(', ')} are not attached`);
  const mappings = instance.BlockDeviceMappings ?? [];
  const roots = mappings.filter((m) => m.DeviceName === ROOT_DEVICE);
  const dataAttached = dataVolumeIds.every((id, i) =>
    mappings.some((m) => m.DeviceName === dataDiskDevice(i + 1) && m.Ebs?.VolumeId === id)
  );
  if (roots.length !== 1 || mappings.length !== 1 + dataVolumeIds.length || !dataAttached) {
    const data = dataVolumeIds.map((id, i) => `, ${id} at ${dataDiskDevice(i + 1)}`).join('');
    const wanted = data
      ? `${1 + dataVolumeIds.length} volumes, one at ${ROOT_DEVICE}${data}`
      : `one volume, at ${ROOT_DEVICE}`;
    problems.push(
      `expected exactly ${wanted}; found ${mappings.map((m) => `${m.DeviceName ?? '?'}=${m.Ebs?.VolumeId ?? '?'}`).join(', ') || 'none'}`
    );
  }
  return problems;
}

/** The tags every imported instance and its volume carry. */
export function vmTags(input: Pick<ValidateInput, 'batch' | 'vm' | 'spec'>): Tag[] {
  const tags: Record<string, string> = {
    Name: input.vm,
    ...input.spec.tags,
    'vmconvoy:batch': input.batch,
    'vmconvoy:vm': input.vm,
  };
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export async function validateInstance(deps: ValidateDeps, input: ValidateInput): Promise<ValidateResult> {
  const { ec2 } = deps;
  const { instanceId, spec } = input;
  const checks: string[] = [];
  const found = await describeInstance(ec2, instanceId);
  if (!found) throw failed(instanceId, ['the instance does not exist']);
  const instance = await stopLeftRunning(deps, input, found);
  const problems = instanceMismatches(instance, spec, input.dataVolumeIds);
  const volumeId = instance.BlockDeviceMappings?.find((m) => m.DeviceName === ROOT_DEVICE)?.Ebs?.VolumeId;
  if (volumeId) {
    const volumes = await call(`DescribeVolumes ${volumeId}`, (abortSignal) =>
      ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal })
    );
    const volume = volumes.Volumes?.[0];
    if (!volume) problems.push(`root volume ${volumeId} does not exist`);
    else if (volume.Size !== input.volumeSizeGib)
      problems.push(`root volume ${volumeId} is ${volume.Size ?? '?'} GiB, expected ${input.volumeSizeGib}`);
  }
  if (problems.length > 0 || !volumeId) throw failed(instanceId, problems);
  checks.push(
    `instance ${instanceId} is stopped`,
    `${instance.Architecture ?? ''} ${instance.InstanceType ?? ''} ${spec.platform === 'Windows' ? 'windows' : 'linux'}`.trim(),
    `one root volume ${volumeId} of ${input.volumeSizeGib} GiB at ${ROOT_DEVICE}`
  );

  const tags = vmTags(input);
  await call(`CreateTags on ${instanceId} and ${volumeId}`, (abortSignal) =>
    ec2.send(new CreateTagsCommand({ Resources: [instanceId, volumeId], Tags: tags }), { abortSignal })
  );
  const described = await call(`DescribeTags ${instanceId} ${volumeId}`, (abortSignal) =>
    ec2.send(
      new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [instanceId, volumeId] }], MaxResults: 1000 }),
      { abortSignal }
    )
  );
  const missingTags: string[] = [];
  for (const resource of [instanceId, volumeId]) {
    for (const tag of tags) {
      const found = described.Tags?.some(
        (t) => t.ResourceId === resource && t.Key === tag.Key && t.Value === tag.Value
      );
      if (!found) missingTags.push(`${resource} lacks tag ${tag.Key ?? ''}`);
    }
  }
  if (missingTags.length > 0) throw failed(instanceId, missingTags);
  checks.push(`tagged ${tags.length} tags on instance and volume`);

  if (input.bootCheck) checks.push(await bootCheck(deps, instanceId, input.bootCheckTimeoutSeconds));
  activityLog.info('instance validated', { batch: input.batch, vm: input.vm, instanceId, volumeId });
  return { instanceId, volumeId, checks };
}

// ---------------------------------------------------------------------------------------------------
// Boot check
// ---------------------------------------------------------------------------------------------------

async function waitFor(
  deps: ValidateDeps,
  deadline: number,
  what: string,
  probe: () => Promise<boolean>
): Promise<boolean> {
  for (;;) {
    throwIfCancelled();
    if (await probe()) return true;
    heartbeat({ waitingFor: what });
    if (Date.now() >= deadline) return false;
    await sleepMs(Math.min(deps.pollIntervalMs ?? 10_000, Math.max(0, deadline - Date.now())));
  }
}

/** Start, wait for running + status ok, stop, wait for stopped. Returns the check's description. */
export async function bootCheck(deps: ValidateDeps, instanceId: string, timeoutSeconds: number): Promise<string> {
  const { ec2 } = deps;
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  let stopSent = false;
  try {
    await call(`StartInstances ${instanceId}`, (abortSignal) =>
      ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal })
    );
    return await startedBootCheck(deps, instanceId, timeoutSeconds, started, deadline, () => (stopSent = true));
  } finally {
    // Whatever ended the check (cancellation, a failed call, a bug): the instance must not stay running.
    // Sent unabortable: the activity's cancellation signal has already fired when it was cancelled.
    if (!stopSent) {
      await stopInstance(ec2, instanceId, { abortable: false }).catch((err: unknown) =>
        activityLog.error('could not stop the instance after the boot check; cleanup stops it', {
          instanceId,
          error: String(err),
        })
      );
    }
  }
}

async function startedBootCheck(
  deps: ValidateDeps,
  instanceId: string,
  timeoutSeconds: number,
  started: number,
  deadline: number,
  onStopSent: () => void
): Promise<string> {
  const { ec2 } = deps;
  let last = 'no status yet';
  const healthy = await waitFor(deps, deadline, 'status ok', async () => {
    const out = await call(`DescribeInstanceStatus ${instanceId}`, (abortSignal) =>
      ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId], IncludeAllInstances: true }), {
        abortSignal,
      })
    );
    const status = out.InstanceStatuses?.find((s) => s.InstanceId === instanceId);
    last = `state ${status?.InstanceState?.Name ?? '?'}, instance ${status?.InstanceStatus?.Status ?? '?'}, system ${status?.SystemStatus?.Status ?? '?'}`;
    return (
      status?.InstanceState?.Name === 'running' &&
      status.InstanceStatus?.Status === 'ok' &&
      status.SystemStatus?.Status === 'ok'
    );
  });
  const bootSeconds = Math.round((Date.now() - started) / 1000);
  // Stop it again in every case: the import's promise is a stopped instance.
  await stopInstance(ec2, instanceId);
  onStopSent();
  const stopDeadline = Date.now() + Math.max(300, timeoutSeconds) * 1000;
  const stopped = await waitFor(
    deps,
    stopDeadline,
    'stopped',
    async () => (await describeInstance(ec2, instanceId))?.State?.Name === 'stopped'
  );
  if (!healthy)
    throw failed(instanceId, [
      `it did not reach running with status checks ok within ${timeoutSeconds} s (last: ${last}); check the console output / screenshot`,
    ]);
  if (!stopped) throw failed(instanceId, ['it booted but did not stop again; stop it by hand']);
  return `boot check: status ok after ${bootSeconds} s, stopped again`;
}
