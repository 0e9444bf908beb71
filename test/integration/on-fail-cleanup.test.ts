/**
 * What cleanup leaves of a VM's converted instance, against the simulator and a real S3 server: a failed VM
 * keeps it stopped by default and terminates it with its volume under `onFail: terminate`; a completed VM
 * keeps its resource record, stamped with the instance's LaunchTime, for `vmconvoy rollback`.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createActivities } from '../../activities';
import type { VmResourceRecord } from '../../common/contracts/activity-io';
import { vmSpecSchema } from '../../common/contracts/migration';
import { resourceRecordKey, vmPrefix } from '../../common/object-keys';
import { RANDOM_IMAGE_ROW, makeImage } from '../helpers/images';
import type { TestS3, TestSim } from '../helpers/testbed';
import { localAwsConfig, startS3, startSim, tempDir } from '../helpers/testbed';

const BATCH = 'batch-on-fail';
const PART = 4 * 1024 * 1024;
const FAST_SIM = { speed: { conversionBytesPerSecond: 512 * 1024 * 1024, stepSeconds: 0.2 } };

describe('cleanup of a converted instance', () => {
  let s3: TestS3;
  let sim: TestSim;
  let dir: { dir: string; remove(): Promise<void> };
  let activities: ReturnType<typeof createActivities>;

  before(async () => {
    [s3, sim, dir] = await Promise.all([startS3(), startSim({ config: FAST_SIM }), tempDir('vmconvoy-onfail-')]);
    activities = createActivities({ config: localAwsConfig(s3, sim), qemuImg: false });
  });
  after(async () => {
    await Promise.all([sim?.stop(), s3?.stop(), dir?.remove()]);
  });

  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
    new MockActivityEnvironment().run(fn, ...args);

  /** One VM imported to a stopped instance, as the workflow gets it before validation. */
  async function imported(vm: string): Promise<{ instanceId: string; volumeId: string }> {
    const spec = vmSpecSchema.parse({
      name: vm,
      image: path.join(dir.dir, `${vm}.raw`),
      architecture: 'x86_64',
      instanceType: 't2.medium',
      ...RANDOM_IMAGE_ROW,
    });
    await makeImage(dir.dir, `${vm}.raw`, 'raw', { virtualMiB: 8, randomMiB: 1 });
    const image = await run(activities.preflightImage, { spec });
    const loc = { batch: BATCH, vm };
    await run(activities.uploadImage, { ...loc, image: spec.image, imageBytes: image.imageBytes, partSizeBytes: PART, concurrency: 2 }); // prettier-ignore
    const validUntil = new Date(Date.now() + 3600_000).toISOString();
    const { manifestKey } = await run(activities.writeManifest, {
      ...loc,
      format: image.format,
      imageBytes: image.imageBytes,
      volumeSizeGib: image.volumeSizeGib,
      partSizeBytes: PART,
      validUntil,
    });
    const created = await run(activities.importInstance, {
      ...loc,
      spec,
      format: image.format,
      imageBytes: image.imageBytes,
      volumeSizeGib: image.volumeSizeGib,
      manifestKey,
      validUntil,
      dryRun: false,
    });
    for (let i = 0; ; i++) {
      const p = await run(activities.describeConversion, {
        conversionTaskId: created.conversionTaskId,
        imageBytes: image.imageBytes,
      });
      if (p.state === 'completed') break;
      assert.ok(i < 300, `conversion of ${vm} did not complete: ${p.statusMessage}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { instanceId: created.instanceId!, volumeId: created.volumeId! };
  }

  async function keysOf(vm: string): Promise<string[]> {
    const prefix = vmPrefix('vmconvoy/', { batch: BATCH, vm });
    const out = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
  }

  async function record(vm: string): Promise<VmResourceRecord> {
    const key = resourceRecordKey('vmconvoy/', { batch: BATCH, vm });
    const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return JSON.parse(await out.Body!.transformToString()) as VmResourceRecord;
  }

  it('a failed VM keeps its instance stopped by default, and onFail terminate removes instance and volume', async () => {
    const [kept, ended] = await Promise.all([imported('keep-me'), imported('end-me')]);
    const keep = await run(activities.cleanupVm, {
      batch: BATCH,
      vm: 'keep-me',
      instanceId: kept.instanceId,
      reason: 'failed: BootCheckFailed',
    });
    assert.deepEqual(keep.remainingInstances, [kept.instanceId]);
    assert.equal(keep.terminatedInstances, undefined);
    const end = await run(activities.cleanupVm, {
      batch: BATCH,
      vm: 'end-me',
      instanceId: ended.instanceId,
      reason: 'failed: BootCheckFailed',
      onFail: 'terminate',
    });
    assert.deepEqual(end.terminatedInstances, [ended.instanceId]);
    assert.deepEqual(end.remainingInstances, []);

    const state = await sim.state();
    assert.equal(state.instances.find((i) => i.instanceId === kept.instanceId)?.state, 'stopped');
    assert.equal(state.volumes.find((v) => v.volumeId === kept.volumeId)?.state, 'in-use');
    assert.equal(state.instances.find((i) => i.instanceId === ended.instanceId)?.state, 'terminated');
    assert.equal(state.volumes.find((v) => v.volumeId === ended.volumeId)?.state, 'deleted');
    assert.deepEqual(await keysOf('keep-me'), ['resources.json'], 'the kept instance stays recorded');
    assert.deepEqual(await keysOf('end-me'), [], 'nothing remains, so nothing stays recorded');
    const stamp = (await record('keep-me')).imports[0]!;
    assert.ok(stamp.stoppedAt && stamp.launchTime, 'the record says when vmconvoy left it stopped');
  });

  it('a completed VM keeps its record, stamped with the LaunchTime of the stopped instance', async () => {
    const done = await imported('done');
    const result = await run(activities.cleanupVm, { batch: BATCH, vm: 'done' });
    assert.ok(result.deletedObjects >= 2, 'parts and manifest deleted');
    assert.deepEqual(await keysOf('done'), ['resources.json']);
    const rec = (await record('done')).imports[0]!;
    assert.equal(rec.instanceId, done.instanceId);
    assert.equal(rec.volumeId, done.volumeId);
    assert.ok(rec.stoppedAt);
    assert.ok(rec.launchTime && !Number.isNaN(Date.parse(rec.launchTime)));
  });
});
