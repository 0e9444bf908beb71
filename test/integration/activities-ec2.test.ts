/**
 * The EC2 side of the activities against the VM Import simulator and a real S3 server: ImportInstance
 * (dry run, create, adopt), DescribeConversionTasks until completed, validation with tags, cancel + cleanup.
 */
import { DescribeTagsCommand, EC2Client, StartInstancesCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createActivities } from '../../activities';
import type { VmSpec } from '../../common/contracts/migration';
import type {
  ConversionProgress,
  ImportInstanceInput,
  ImportInstanceResult,
  PreflightResult,
} from '../../common/contracts/activity-io';
import { vmSpecSchema } from '../../common/contracts/migration';
import type { ImageKind } from '../helpers/images';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim } from '../helpers/testbed';
import { until } from '../helpers/wait';
import { localAwsConfig, startS3, startSim, tempDir } from '../helpers/testbed';

const BATCH = 'batch-ec2';
const PART = 4 * 1024 * 1024;
/** Simulator timings: seconds, not minutes (see sim/ for the config shape). */
const FAST_SIM = { speed: { conversionBytesPerSecond: 512 * 1024 * 1024, stepSeconds: 0.2 } };

describe('EC2 import activities against the simulator', () => {
  let s3: TestS3;
  let sim: TestSim;
  let dir: { dir: string; remove(): Promise<void> };
  let activities: ReturnType<typeof createActivities>;
  let ec2: EC2Client;

  before(async () => {
    s3 = await startS3();
    sim = await startSim({ config: FAST_SIM });
    dir = await tempDir('vmconvoy-ec2-');
    const config = localAwsConfig(s3, sim);
    activities = createActivities({ config, qemuImg: false, bootCheckPollMs: 200 });
    ec2 = new EC2Client({
      region: config.region,
      endpoint: sim.endpoint,
      credentials: { accessKeyId: config.accessKeyId!, secretAccessKey: config.secretAccessKey! },
    });
  });
  after(async () => {
    ec2?.destroy();
    await sim?.stop();
    await s3?.stop();
    await dir?.remove();
  });

  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    new MockActivityEnvironment().run(fn, ...args);

  function spec(name: string, extra: Record<string, unknown> = {}): VmSpec {
    return vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name,
      image: path.join(dir.dir, `${name}.vmdk`),
      architecture: 'x86_64',
      instanceType: 'm3.medium',
      tags: { owner: 'team-a' },
      ...extra,
    });
  }

  /** Pre-flight, upload and manifest for one VM, as the workflow does before ImportInstance. */
  async function stage(
    vmSpec: VmSpec,
    writeManifestToo = true,
    disk: { kind: ImageKind; marker?: string } = { kind: 'stream-vmdk' }
  ): Promise<{ image: PreflightResult; input: ImportInstanceInput }> {
    await makeImage(dir.dir, path.basename(vmSpec.image), disk.kind, {
      virtualMiB: 64,
      randomMiB: 8,
      marker: disk.marker,
    });
    const image = await run(activities.preflightImage, { spec: vmSpec });
    const location = { batch: BATCH, vm: vmSpec.name };
    await run(activities.uploadImage, {
      ...location,
      image: vmSpec.image,
      imageBytes: image.imageBytes,
      partSizeBytes: PART,
      concurrency: 2,
    });
    const validUntil = new Date(Date.now() + 3600_000).toISOString();
    const manifestKey = `vmconvoy/${BATCH}/${vmSpec.name}/manifest.xml`;
    if (writeManifestToo) {
      const manifest = await run(activities.writeManifest, {
        ...location,
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
        partSizeBytes: PART,
        validUntil,
      });
      assert.equal(manifest.manifestKey, manifestKey);
    }
    return {
      image,
      input: {
        ...location,
        spec: vmSpec,
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
        manifestKey,
        validUntil,
        dryRun: false,
      },
    };
  }

  async function waitForState(
    conversionTaskId: string,
    imageBytes: number,
    states: string[],
    timeoutMs = 60_000
  ): Promise<ConversionProgress[]> {
    const seen: ConversionProgress[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const progress = await run(activities.describeConversion, { conversionTaskId, imageBytes });
      seen.push(progress);
      if (states.includes(progress.state)) return seen;
      if (Date.now() > deadline)
        assert.fail(
          `task ${conversionTaskId} still ${progress.state} (${progress.statusMessage}) after ${timeoutMs} ms`
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  let vm1: { image: PreflightResult; input: ImportInstanceInput };
  let taskId = '';
  let instanceId = '';

  it('a DryRun ImportInstance succeeds and creates nothing', async () => {
    vm1 = await stage(spec('vm1', { description: 'web & db', securityGroups: ['default'] }));
    const result = await run(activities.importInstance, { ...vm1.input, dryRun: true });
    assert.deepEqual(result, { conversionTaskId: '', adopted: false });
    assert.equal((await sim.state()).tasks.length, 0);
  });

  it('creates exactly one conversion task; a second call adopts it', async () => {
    const created = await run(activities.importInstance, vm1.input);
    assert.match(created.conversionTaskId, /^import-i-/);
    assert.equal(created.adopted, false);
    taskId = created.conversionTaskId;
    // Tagged as this VM's the moment it exists, long before validation.
    const early = (await sim.state()).instances.find((i) => i.instanceId === created.instanceId);
    assert.equal(early?.tags['vmconvoy:vm'], 'vm1');
    assert.equal(early?.tags['vmconvoy:batch'], BATCH);
    const again = await run(activities.importInstance, vm1.input);
    assert.equal(again.adopted, true);
    assert.equal(again.conversionTaskId, taskId);
    assert.equal((await sim.state()).tasks.length, 1);
  });

  it('a non-EC2 answer to the idempotency lookup is retried, never read as "no earlier task"', async () => {
    // After a lost ImportInstance response, an HTML page from a proxy must not lead to a second task.
    await sim.configure({ faults: { wrongContentTypeRate: 1, actions: ['DescribeConversionTasks'] } });
    try {
      const before = (await sim.state()).calls.ImportInstance ?? 0;
      await assert.rejects(
        run(activities.importInstance, vm1.input),
        (err: Error & { type?: string; nonRetryable?: boolean }) => {
          assert.equal(err.type, 'AwsUnavailable');
          assert.equal(err.nonRetryable, false);
          return true;
        }
      );
      assert.equal((await sim.state()).calls.ImportInstance ?? 0, before, 'no ImportInstance was sent');
      assert.equal((await sim.state()).tasks.length, 1);
    } finally {
      await sim.configure({ faults: { wrongContentTypeRate: 0, actions: [] } });
    }
  });

  it('a conversion that failed before the retry of its lost ImportInstance could look is adopted, not sent again', async () => {
    // The answer to ImportInstance is lost (the task exists), and the conversion fails within moments.
    const failing = await stage(spec('lost1', { image: path.join(dir.dir, 'lost1.raw') }), true, {
      kind: 'raw',
      marker: 'VMCONVOY_SIM_FAIL=ClientError: Unsupported kernel version 2.6.18',
    });
    const tasksOf = async () => (await sim.state()).tasks.filter((t) => t.manifestUrl.includes('/lost1/'));
    const execution = {
      activityId: 'import-lost1',
      workflowExecution: { workflowId: `${BATCH}/lost1`, runId: 'run-1' },
    };
    await sim.configure({ faults: { lostImportResponseRate: 1, actions: ['ImportInstance'] } });
    try {
      await assert.rejects(
        new MockActivityEnvironment({ ...execution, attempt: 1 }).run(activities.importInstance, failing.input),
        (err: ApplicationFailure) => {
          assert.equal(err.nonRetryable, false, `a lost answer is retried: ${err.message}`);
          return true;
        }
      );
    } finally {
      await sim.configure({ faults: { lostImportResponseRate: 0, actions: [] } });
    }
    const [sent] = await tasksOf();
    assert.ok(sent, 'the lost answer hid a task EC2 created');
    await until(tasksOf, (tasks) => tasks[0]?.state === 'cancelled');

    // The retried attempt of the same activity execution finds the failed task its first attempt created.
    const retried: ImportInstanceResult = await new MockActivityEnvironment({ ...execution, attempt: 2 }).run(
      activities.importInstance,
      failing.input
    );
    assert.deepEqual([retried.conversionTaskId, retried.adopted], [sent.id, true]);
    assert.equal((await tasksOf()).length, 1, 'no second conversion task');
    const failure = await run(activities.describeConversion, {
      conversionTaskId: retried.conversionTaskId,
      imageBytes: failing.image.imageBytes,
    });
    assert.match(failure.failure?.message ?? '', /Unsupported kernel version 2\.6\.18/);

    // Another execution (the workflow importing again after that failure) is not handed the failed task.
    const again: ImportInstanceResult = await new MockActivityEnvironment({
      ...execution,
      activityId: 'import-lost1-again',
      attempt: 1,
    }).run(activities.importInstance, failing.input);
    assert.equal(again.adopted, false);
    assert.notEqual(again.conversionTaskId, sent.id);
    assert.equal((await tasksOf()).length, 2);
  });

  it('describes the conversion until it completes, with rising progress', async () => {
    const seen = await waitForState(taskId, vm1.image.imageBytes, ['completed', 'cancelled']);
    const last = seen[seen.length - 1]!;
    assert.equal(last.state, 'completed', last.statusMessage);
    assert.equal(last.percent, 100);
    assert.equal(last.failure, undefined);
    assert.match(last.instanceId ?? '', /^i-/);
    assert.match(last.volumeId ?? '', /^vol-/);
    instanceId = last.instanceId!;
    for (let i = 1; i < seen.length; i++)
      assert.ok(seen[i]!.percent >= seen[i - 1]!.percent, 'progress never goes back');
  });

  it('validates the instance and tags instance and volume', async () => {
    const result = await run(activities.validateInstance, {
      batch: BATCH,
      vm: 'vm1',
      spec: vm1.input.spec,
      instanceId,
      volumeSizeGib: vm1.image.volumeSizeGib,
      bootCheck: false,
      bootCheckTimeoutSeconds: 60,
    });
    assert.equal(result.instanceId, instanceId);
    assert.match(result.volumeId, /^vol-/);
    const tags = await ec2.send(
      new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [instanceId, result.volumeId] }] })
    );
    for (const resource of [instanceId, result.volumeId]) {
      const mine = Object.fromEntries(
        (tags.Tags ?? []).filter((t) => t.ResourceId === resource).map((t) => [t.Key, t.Value])
      );
      assert.deepEqual(mine, { Name: 'vm1', 'vmconvoy:batch': BATCH, 'vmconvoy:vm': 'vm1', owner: 'team-a' });
    }
  });

  it('names what differs when the instance does not match the inventory', async () => {
    await assert.rejects(
      run(activities.validateInstance, {
        batch: BATCH,
        vm: 'vm1',
        spec: { ...vm1.input.spec, instanceType: 'c3.large' },
        instanceId,
        volumeSizeGib: vm1.image.volumeSizeGib + 1,
        bootCheck: false,
        bootCheckTimeoutSeconds: 60,
      }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'ValidationFailed' &&
        /instance type is m3\.medium, expected c3\.large/.test(err.message) &&
        /is 8 GiB, expected 9/.test(err.message)
    );
  });

  it('boot-checks the instance: running with status ok, then stopped again', async () => {
    const result = await run(activities.validateInstance, {
      batch: BATCH,
      vm: 'vm1',
      spec: vm1.input.spec,
      instanceId,
      volumeSizeGib: vm1.image.volumeSizeGib,
      bootCheck: true,
      bootCheckTimeoutSeconds: 60,
    });
    assert.ok(
      result.checks.some((c) => /boot check: status ok/.test(c)),
      result.checks.join('; ')
    );
  });

  const instanceState = async (id: string): Promise<string | undefined> =>
    (await sim.state()).instances.find((i) => i.instanceId === id)?.state;
  const validateInput = (bootCheckTimeoutSeconds = 60) => ({
    batch: BATCH,
    vm: 'vm1',
    spec: vm1.input.spec,
    instanceId,
    volumeSizeGib: vm1.image.volumeSizeGib,
    bootCheck: true,
    bootCheckTimeoutSeconds,
  });

  it('a boot check cancelled midway stops the instance on its way out', async () => {
    // Slow transitions: the cancel lands while the instance is starting or running.
    await sim.configure({ speed: { instanceTransitionSeconds: 3 } });
    try {
      const env = new MockActivityEnvironment();
      const validation = env.run(activities.validateInstance, validateInput());
      await until(
        () => instanceState(instanceId),
        (s) => s === 'pending' || s === 'running',
        { timeoutMs: 30_000 }
      );
      env.cancel();
      await assert.rejects(validation);
      const calls = (await sim.state()).calls;
      assert.ok((calls.StopInstances ?? 0) >= 1, 'StopInstances was sent after the cancellation');
      await until(
        () => instanceState(instanceId),
        (s) => s === 'stopped',
        { timeoutMs: 30_000 }
      );
    } finally {
      await sim.configure({ speed: { instanceTransitionSeconds: 0.5 } });
    }
  });

  it('a validation that finds the instance running (an earlier attempt died mid-check) stops it first and passes', async () => {
    await ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }));
    await until(
      () => instanceState(instanceId),
      (s) => s === 'running',
      { timeoutMs: 30_000 }
    );
    const result = await run(activities.validateInstance, validateInput());
    assert.ok(
      result.checks.some((c) => /boot check: status ok/.test(c)),
      result.checks.join('; ')
    );
    await until(
      () => instanceState(instanceId),
      (s) => s === 'stopped',
      { timeoutMs: 30_000 }
    );
  });

  it('cancels an active task and deletes its objects on cleanup; a second cleanup is a no-op', async () => {
    // No manifest yet: EC2 waits for it, so the task stays active.
    const vm2 = await stage(spec('vm2'), false);
    const created = await run(activities.importInstance, vm2.input);
    const active = await run(activities.describeConversion, {
      conversionTaskId: created.conversionTaskId,
      imageBytes: vm2.image.imageBytes,
    });
    assert.equal(active.state, 'active');

    const first = await run(activities.cleanupVm, {
      batch: BATCH,
      vm: 'vm2',
      cancelConversionTaskId: created.conversionTaskId,
      reason: 'test',
    });
    assert.equal(first.cancelledTask, true);
    assert.ok(first.deletedObjects >= 1);
    const seen = await waitForState(created.conversionTaskId, vm2.image.imageBytes, ['cancelled']);
    assert.equal(seen[seen.length - 1]!.failure?.type !== undefined, true);

    const second = await run(activities.cleanupVm, {
      batch: BATCH,
      vm: 'vm2',
      cancelConversionTaskId: created.conversionTaskId,
      reason: 'test',
    });
    assert.deepEqual(second, { deletedObjects: 0, cancelledTask: false, stoppedInstances: [], remainingInstances: [] });
    const left = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/${BATCH}/vm2/` })
    );
    assert.equal(left.KeyCount ?? 0, 0);
    const vm1Left = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/${BATCH}/vm1/` })
    );
    assert.ok((vm1Left.KeyCount ?? 0) > 0, "vm1's objects are untouched");
  });

  it('reads user data only inside the activity and rejects a missing file as UserDataInvalid', async () => {
    const userData = path.join(dir.dir, 'user-data.txt');
    await writeFile(userData, '#!/bin/sh\necho secret-token-123\n');
    const vm3 = await stage(spec('vm3', { userDataFile: path.join(dir.dir, 'missing.txt') }));
    await assert.rejects(
      run(activities.importInstance, vm3.input),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'UserDataInvalid' && err.nonRetryable
    );
    const ok = await run(activities.importInstance, {
      ...vm3.input,
      spec: { ...vm3.input.spec, userDataFile: userData },
    });
    assert.doesNotMatch(JSON.stringify(ok), /secret-token|IyEv/);
  });
  it('a lost ImportInstance answer while EC2 lists new tasks 20-40 s late: the retry waits, and one task exists', async () => {
    const late = await stage(spec('late1'));
    const tasksOf = async () => (await sim.state()).tasks.filter((t) => t.manifestUrl.includes('/late1/'));
    const execution = {
      activityId: 'import-late1',
      workflowExecution: { workflowId: `${BATCH}/late1`, runId: 'run-late' },
    };
    await sim.configure({
      consistency: { listingDelayMinSeconds: 20, listingDelayMaxSeconds: 40 },
      faults: { lostImportResponseRate: 1, actions: ['ImportInstance'] },
    });
    try {
      await assert.rejects(
        new MockActivityEnvironment({ ...execution, attempt: 1 }).run(activities.importInstance, late.input),
        (err: ApplicationFailure) => err.nonRetryable === false
      );
      await sim.configure({ faults: { lostImportResponseRate: 0, actions: [] } });
      assert.equal((await tasksOf()).length, 1, 'EC2 created the task whose answer was lost');
      const started = Date.now();
      const retried: ImportInstanceResult = await new MockActivityEnvironment({ ...execution, attempt: 2 }).run(
        activities.importInstance,
        late.input
      );
      const waited = Date.now() - started;
      console.log(`[listing delay] the retry found the lost task after ${waited} ms`);
      assert.equal(retried.adopted, true);
      assert.equal(retried.conversionTaskId, (await tasksOf())[0]!.id);
      assert.equal((await tasksOf()).length, 1, 'exactly one conversion task');
    } finally {
      await sim.configure({
        consistency: { listingDelayMinSeconds: 0, listingDelayMaxSeconds: 0 },
        faults: { lostImportResponseRate: 0, actions: [] },
      });
    }
  });

  it('two deployments (namespaces) sharing the bucket never adopt or delete each other’s tasks and objects', async () => {
    const stageIn = async (namespace: string): Promise<ImportInstanceInput> => {
      const vmSpec = spec('shared', { image: path.join(dir.dir, `shared-${namespace}.vmdk`) });
      await makeImage(dir.dir, path.basename(vmSpec.image), 'stream-vmdk', { virtualMiB: 64, randomMiB: 2 });
      const image = await run(activities.preflightImage, { spec: vmSpec });
      const location = { batch: BATCH, vm: 'shared', namespace };
      await run(activities.uploadImage, {
        ...location,
        image: vmSpec.image,
        imageBytes: image.imageBytes,
        partSizeBytes: PART,
        concurrency: 2,
      });
      const validUntil = new Date(Date.now() + 3600_000).toISOString();
      const manifest = await run(activities.writeManifest, {
        ...location,
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
        partSizeBytes: PART,
        validUntil,
      });
      assert.equal(manifest.manifestKey, `vmconvoy/ns=${namespace}/${BATCH}/shared/manifest.xml`);
      return {
        ...location,
        spec: vmSpec,
        format: image.format,
        imageBytes: image.imageBytes,
        volumeSizeGib: image.volumeSizeGib,
        manifestKey: manifest.manifestKey,
        validUntil,
        dryRun: false,
      };
    };
    const [a, b] = [await stageIn('team-a'), await stageIn('team-b')];
    const taskA = await run(activities.importInstance, a);
    // B's marker-guarded second attempt looks for an earlier task: A's (same batch and VM name) is not B's.
    const taskB: ImportInstanceResult = await new MockActivityEnvironment({ attempt: 2 }).run(
      activities.importInstance,
      b
    );
    assert.equal(taskB.adopted, false);
    assert.notEqual(taskB.conversionTaskId, taskA.conversionTaskId);
    await run(activities.cleanupVm, { batch: BATCH, vm: 'shared', namespace: 'team-b', reason: 'test' });
    const keysOf = async (namespace: string) =>
      (
        await s3.client.send(
          new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `vmconvoy/ns=${namespace}/${BATCH}/shared/` })
        )
      ).KeyCount ?? 0;
    assert.equal(await keysOf('team-b'), 0);
    assert.ok((await keysOf('team-a')) > 0, "A's objects are untouched");
    const tasks = (await sim.state()).tasks;
    const stateA = tasks.find((t) => t.id === taskA.conversionTaskId)?.state;
    assert.ok(stateA === 'active' || stateA === 'completed', `A's task goes on (${stateA})`);
    await run(activities.cleanupVm, { batch: BATCH, vm: 'shared', namespace: 'team-a', reason: 'test' });
  });
});
