/**
 * The overhead benchmark's baselines. A parent keeps `window` children running (as vmconvoy's fleet does).
 * - bare: each child makes `activitiesPerVm` calls to an activity that does nothing. No uploads, no AWS,
 *   no search attributes, no signals: the least a Temporal application can do for the same fleet.
 * - same work: each child calls vmconvoy's own activities in order (pre-flight, upload, manifest,
 *   ImportInstance, describe, validate, cleanup) and nothing else: no fleet bookkeeping, no conversion
 *   quota, no status, no search attributes. What is left between it and vmconvoy is orchestration.
 */
import {
  ApplicationFailure,
  condition,
  executeChild,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { MigrationSettings, VmSpec } from '../../common/contracts/migration';
import type { BaselineActivities } from './activities';

const { noop } = proxyActivities<BaselineActivities>({ startToCloseTimeout: '1 minute' });
const work = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes' });

export interface BaselineFleetInput {
  prefix: string;
  total: number;
  window: number;
  activitiesPerVm: number;
}

export interface SameWorkVm {
  /** The VM of every child; each gets its own name (`<name>-<i>`). */
  spec: VmSpec;
  settings: MigrationSettings;
}

export async function baselineFleetWorkflow(input: BaselineFleetInput & { sameWork?: SameWorkVm }): Promise<number> {
  let running = 0;
  let done = 0;
  // A child that fails ends the run at once: left to the loop, its rejection failed every workflow task and
  // the benchmark waited for ever (it did when pre-flight began judging guests and the baseline's rows did
  // not say inspection=skip).
  let failed: string | undefined;
  const stopIfFailed = (): void => {
    if (failed !== undefined) throw ApplicationFailure.nonRetryable(`a baseline VM failed: ${failed}`);
  };
  for (let i = 0; i < input.total; i++) {
    await condition(() => running < input.window || failed !== undefined);
    stopIfFailed();
    running += 1;
    const workflowId = `${input.prefix}/${i}`;
    const child = input.sameWork
      ? executeChild(sameWorkVmWorkflow, {
          workflowId,
          args: [{ ...input.sameWork, spec: { ...input.sameWork.spec, name: `${input.sameWork.spec.name}-${i}` } }],
        })
      : executeChild(baselineVmWorkflow, { workflowId, args: [input.activitiesPerVm] });
    void child.then(
      () => {
        running -= 1;
        done += 1;
      },
      (err: unknown) => {
        failed = `${workflowId}: ${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}`;
      }
    );
  }
  await condition(() => done === input.total || failed !== undefined);
  stopIfFailed();
  return done;
}

/** vmconvoy's activities in order, once each (instant conversions: usually one describe), and nothing else. */
export async function sameWorkVmWorkflow({ spec, settings }: SameWorkVm): Promise<void> {
  const location = { batch: workflowInfo().workflowId.split('/')[0]!, vm: spec.name };
  const image = await work.preflightImage({ spec });
  await work.uploadImage({
    ...location,
    image: spec.image,
    imageBytes: image.imageBytes,
    partSizeBytes: settings.partSizeBytes,
    concurrency: settings.uploadConcurrency,
  });
  const validUntil = new Date(Date.now() + settings.deadlineSeconds * 1000).toISOString();
  const common = {
    ...location,
    format: image.format,
    imageBytes: image.imageBytes,
    volumeSizeGib: image.volumeSizeGib,
    validUntil,
  };
  const { manifestKey } = await work.writeManifest({ ...common, partSizeBytes: settings.partSizeBytes });
  const task = await work.importInstance({ ...common, spec, manifestKey, dryRun: false });
  // Polled as vmconvoy polls: at once, then after its first interval.
  let done = await work.describeConversion({ conversionTaskId: task.conversionTaskId, imageBytes: image.imageBytes });
  while (done.state === 'active') {
    await sleep(settings.pollInitialSeconds * 1000);
    done = await work.describeConversion({ conversionTaskId: task.conversionTaskId, imageBytes: image.imageBytes });
  }
  if (done.state !== 'completed')
    throw ApplicationFailure.nonRetryable(`conversion ${task.conversionTaskId} ended ${done.state}`);
  await work.validateInstance({
    ...location,
    spec,
    instanceId: done.instanceId ?? task.instanceId ?? '',
    volumeSizeGib: image.volumeSizeGib,
    bootCheck: false,
    bootCheckTimeoutSeconds: settings.bootCheckTimeoutSeconds,
  });
  await work.cleanupVm(location);
}

export async function baselineVmWorkflow(activities: number): Promise<void> {
  for (let i = 0; i < activities; i++) await noop();
}
