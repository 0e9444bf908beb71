/**
 * What vmconvoy created in EC2 for one VM, and what it may do to it. The record (VmResourceRecord, an S3
 * object beside the manifest) lists every conversion task, instance and volume the VM's imports made; it
 * outlives a failed or cancelled run while an instance remains, so a later run (`retry`) adopts or cleans
 * that instance instead of leaving it behind. An instance is touched only when the record (or the VM's own
 * workflow) names it AND its tags do not name another VM: a record edited in the bucket cannot make
 * vmconvoy stop or terminate an instance of someone else.
 */
import type { EC2Client, Instance, Tag } from '@aws-sdk/client-ec2';
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { ObjectLocation, RecordedImport, VmResourceRecord } from '../common/contracts/activity-io';
import { isPartKey, resourceRecordKey, vmPrefix } from '../common/object-keys';
import { activityLog, heartbeat, sleepMs, throwIfCancelled } from './activity-context';
import { awsCall } from './aws-call';
import { readSmallObject, writeJsonObject } from './s3-objects';
import { isAwsError } from './aws-error-codes';

export interface RecordStore {
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
}

/** Imports kept in the record: conversion retries are bounded (settings.conversionRetries), runs are not. */
const MAX_RECORDED_IMPORTS = 20;

export const ROOT_DEVICE = '/dev/sda1';

// ---------------------------------------------------------------------------------------------------
// The record
// ---------------------------------------------------------------------------------------------------

export async function readResourceRecord(
  deps: RecordStore,
  loc: ObjectLocation
): Promise<VmResourceRecord | undefined> {
  const key = resourceRecordKey(deps.keyPrefix, loc);
  const text = await readSmallObject(deps, key);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<VmResourceRecord>;
    const imports = Array.isArray(parsed.imports) ? parsed.imports.filter(isRecordedImport) : [];
    return { version: 1, batch: loc.batch, vm: loc.vm, namespace: loc.namespace, imports };
  } catch {
    activityLog.warn('resource record unreadable; treated as empty', { key });
    return undefined;
  }
}

function isRecordedImport(x: unknown): x is RecordedImport {
  const r = x as Partial<RecordedImport> | null;
  return typeof r === 'object' && r !== null && typeof r.conversionTaskId === 'string' && typeof r.at === 'string';
}

async function writeResourceRecord(deps: RecordStore, loc: ObjectLocation, record: VmResourceRecord): Promise<void> {
  const key = resourceRecordKey(deps.keyPrefix, loc);
  await writeJsonObject(deps, key, record);
}

/** Adds (or updates, by task ID) imports in the record, and marks instances known to be gone. */
export async function updateResourceRecord(
  deps: RecordStore,
  loc: ObjectLocation,
  change: { add?: RecordedImport; goneInstances?: string[] }
): Promise<VmResourceRecord> {
  const record = (await readResourceRecord(deps, loc)) ?? {
    version: 1 as const,
    batch: loc.batch,
    vm: loc.vm,
    namespace: loc.namespace,
    imports: [],
  };
  let imports = record.imports;
  if (change.add) {
    const add = change.add;
    const previous = imports.find((i) => i.conversionTaskId === add.conversionTaskId);
    imports = [
      ...imports.filter((i) => i.conversionTaskId !== add.conversionTaskId),
      { ...previous, ...add, imageFingerprint: add.imageFingerprint ?? previous?.imageFingerprint },
    ];
  }
  const gone = new Set(change.goneInstances ?? []);
  imports = imports.map((i) => (i.instanceId && gone.has(i.instanceId) ? { ...i, gone: true } : i));
  const updated: VmResourceRecord = { ...record, imports: imports.slice(-MAX_RECORDED_IMPORTS) };
  await writeResourceRecord(deps, loc, updated);
  return updated;
}

/** Instances the record names that may still exist. */
export function liveRecordedInstances(record: VmResourceRecord | undefined): RecordedImport[] {
  return (record?.imports ?? []).filter((i) => i.instanceId && !i.gone);
}

/**
 * A hash of the uploaded parts (index, size, ETag): equal for two runs only when they uploaded the same
 * bytes, so an instance converted from an earlier upload is adopted only when the image did not change.
 */
export async function imageFingerprint(
  deps: RecordStore,
  loc: ObjectLocation,
  /** What else the conversion was asked for (format, volume size): part of the identity. */
  request: string
): Promise<string | undefined> {
  const prefix = vmPrefix(deps.keyPrefix, loc);
  const parts: string[] = [];
  let token: string | undefined;
  do {
    const page = await awsCall(
      { operation: `listing ${prefix} (image fingerprint)`, bucket: deps.bucket, service: 'S3' },
      (abortSignal) =>
        deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }), {
          abortSignal,
        })
    );
    for (const o of page.Contents ?? []) {
      if (!o.Key || !isPartKey(deps.keyPrefix, loc, o.Key)) continue;
      parts.push(`${o.Key.slice(prefix.length)}:${o.Size ?? -1}:${(o.ETag ?? '').replace(/"/g, '').toLowerCase()}`);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (parts.length === 0) return undefined;
  parts.sort((a, b) => Number(/\d+/.exec(a)?.[0]) - Number(/\d+/.exec(b)?.[0]));
  return createHash('sha256')
    .update(`${request}\n${parts.join('\n')}`)
    .digest('hex')
    .slice(0, 32);
}

// ---------------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------------

export function describeInstance(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  return awsCall(
    { operation: `DescribeInstances ${instanceId}`, service: 'EC2' },
    async (abortSignal) => {
      const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal });
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
    },
    (err) => (isAwsError(err, 'InvalidInstanceID.NotFound') ? { value: undefined } : undefined)
  );
}

/**
 * An instance this VM may have created, as EC2 lists it now: gone (terminated, or never listed), someone
 * else's (its vmconvoy tags name another VM: never ours to stop or terminate), or this VM's.
 */
export async function ownInstance(
  ec2: EC2Client,
  instanceId: string,
  loc: ObjectLocation
): Promise<{ gone: true } | { gone: false; instance?: Instance }> {
  const instance = await describeInstance(ec2, instanceId);
  const state = instance?.State?.Name;
  if (!instance || state === 'terminated' || state === 'shutting-down') return { gone: true };
  if (!taggedForVm(instance, loc)) {
    activityLog.warn('instance tagged for another VM; left alone', { vm: loc.vm, instanceId });
    return { gone: false };
  }
  return { gone: false, instance };
}

/** False when the instance's vmconvoy tags name another VM (or batch): never ours to stop or terminate. */
export function taggedForVm(instance: Instance, loc: ObjectLocation): boolean {
  const tag = (key: string): string | undefined => instance.Tags?.find((t) => t.Key === key)?.Value;
  const vm = tag('vmconvoy:vm');
  const batch = tag('vmconvoy:batch');
  // Untagged: tagging has not happened yet (or failed); the record or the workflow is the evidence.
  if (vm === undefined && batch === undefined) return true;
  return vm === loc.vm && batch === loc.batch;
}

/** The import is done and the instance has its root volume: running or starting means booted by us. */
export function isBootedImport(instance: Instance): boolean {
  const state = instance.State?.Name;
  const hasRoot = (instance.BlockDeviceMappings ?? []).some((m) => m.DeviceName === ROOT_DEVICE);
  // During conversion EC2 shows the instance without its root volume: that one is the conversion's.
  return state === 'running' || (state === 'pending' && hasRoot);
}

/**
 * StopInstances on a booted instance. `abortable: false` sends it even when the activity is being
 * cancelled (a `finally` after cancellation), with its own time limit instead of the activity's signal.
 */
export async function stopInstance(
  ec2: EC2Client,
  instanceId: string,
  opts: { abortable: boolean } = { abortable: true }
): Promise<void> {
  const operation = `StopInstances ${instanceId}`;
  if (opts.abortable) {
    await awsCall({ operation, service: 'EC2' }, (abortSignal) =>
      ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal })
    );
  } else {
    await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }), {
      abortSignal: AbortSignal.timeout(60_000),
    });
  }
  activityLog.info('instance stopped', { instanceId });
}

export async function terminateInstance(ec2: EC2Client, instanceId: string): Promise<void> {
  await awsCall({ operation: `TerminateInstances ${instanceId}`, service: 'EC2' }, (abortSignal) =>
    ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal })
  );
  activityLog.info('instance terminated', { instanceId });
}

/** Polls until the instance is in `state` or `timeoutMs` passed; heartbeats while it waits. */
export async function waitForInstanceState(
  ec2: EC2Client,
  instanceId: string,
  state: string,
  timeoutMs: number,
  pollMs: number
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfCancelled();
    if ((await describeInstance(ec2, instanceId))?.State?.Name === state) return true;
    if (Date.now() >= deadline) return false;
    heartbeat({ waitingFor: `${instanceId} ${state}` });
    await sleepMs(Math.min(pollMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Tags the instance as this VM's as soon as it exists. EC2 may not know a new ID for a while ("eventual
 * consistency": CreateTags answers InvalidInstanceID.NotFound / InvalidID), so it tries again until
 * `waitMs`; false when it never could (validation tags again later).
 */
export async function tagNewInstance(
  ec2: EC2Client,
  instanceId: string,
  tags: Tag[],
  waitMs: number
): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (let pause = 1_000; ; pause = Math.min(pause * 2, 8_000)) {
    let tagged: boolean;
    try {
      tagged = await awsCall(
        { operation: `CreateTags on ${instanceId}`, service: 'EC2' },
        async (abortSignal) => {
          await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: tags }), { abortSignal });
          return true;
        },
        (err) => (isAwsError(err, 'InvalidInstanceID.NotFound', 'InvalidID') ? { value: false } : undefined)
      );
    } catch (err) {
      throwIfCancelled();
      // The import itself succeeded: a tag refused now must not fail it (validation tags and checks again).
      activityLog.warn('could not tag the new instance yet; validation tags it', { instanceId, error: String(err) });
      return false;
    }
    if (tagged) return true;
    const left = deadline - Date.now();
    if (left <= 0) {
      activityLog.warn('instance not listed yet; validation tags it', { instanceId });
      return false;
    }
    heartbeat({ waitingFor: `EC2 to list ${instanceId}` });
    await sleepMs(Math.min(pause, left));
  }
}
