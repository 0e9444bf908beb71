/**
 * The simulator's data-volume side against the real @aws-sdk/client-ec2 and a real S3 server: ImportVolume's
 * task detail (Volume.Id, zone, BytesConverted), AttachVolume and every refusal it has, DescribeInstances'
 * block device mapping and DescribeVolumes' attachments, a lost ImportVolume answer, and termination.
 */
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import {
  AttachVolumeCommand,
  DeleteVolumeCommand,
  DescribeConversionTasksCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  ImportInstanceCommand,
  ImportVolumeCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { createActivities } from '../../activities';
import { DEFAULT_CONFIG } from '../../sim/config';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim } from '../helpers/testbed';
import { localAwsConfig, startS3, startSim, tempDir } from '../helpers/testbed';
import { until } from '../helpers/wait';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
const FAST = {
  speed: {
    conversionBytesPerSecond: 512 * 1024 * 1024,
    stepSeconds: 0.1,
    pendingPollMs: 100,
    cancelSeconds: 0.2,
    instanceTransitionSeconds: 0.3,
  },
};

let s3: TestS3;
let sim: TestSim;
let ec2: EC2Client;
let dir: { dir: string; remove(): Promise<void> };
let activities: ReturnType<typeof createActivities>;
let seq = 0;

const client = (extra: Partial<EC2ClientConfig> = {}) =>
  new EC2Client({ endpoint: sim.endpoint, region: 'us-east-1', credentials: CREDS, maxAttempts: 1, ...extra });

before(async () => {
  [s3, dir] = await Promise.all([startS3(), tempDir('vmconvoy-sim-volumes-')]);
  sim = await startSim({ config: FAST });
  ec2 = client();
  activities = createActivities({ config: localAwsConfig(s3, sim), qemuImg: false });
});
after(async () => {
  ec2?.destroy();
  await sim?.stop();
  await Promise.all([s3?.stop(), dir?.remove()]);
});

/** A 4 MiB raw image uploaded as parts with its manifest for a volume of `volumeSizeGib`. */
async function staged(volumeSizeGib = 8) {
  const vm = `vol-${++seq}`;
  const image = await makeImage(dir.dir, `${vm}.img`, 'raw', { virtualMiB: 4, randomMiB: 1 });
  const { size } = await stat(image);
  const location = { batch: 'volumes', vm };
  await activities.uploadImage({ ...location, image, imageBytes: size, partSizeBytes: 1024 * 1024, concurrency: 4 });
  const manifest = await activities.writeManifest({
    ...location,
    format: 'RAW',
    imageBytes: size,
    volumeSizeGib,
    partSizeBytes: 1024 * 1024,
    validUntil: new Date(Date.now() + 3600_000).toISOString(),
  });
  const manifestUrl = await getSignedUrl(
    s3.client,
    new GetObjectCommand({ Bucket: s3.bucket, Key: manifest.manifestKey }),
    { expiresIn: 3600 }
  );
  return { size, manifestUrl };
}

const task = async (id: string) =>
  (await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!;
const settled = (id: string) =>
  until(
    () => task(id),
    (t) => t.State === 'completed' || t.State === 'cancelled'
  );
const volume = async (id: string) => (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
const instanceOf = async (id: string) =>
  (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;

async function failure(promise: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

async function importInstance(zone = 'us-east-1a') {
  const stage = await staged();
  const created = await ec2.send(
    new ImportInstanceCommand({
      Platform: 'Windows',
      LaunchSpecification: {
        Architecture: 'x86_64',
        InstanceType: 'm5.large',
        Placement: { AvailabilityZone: zone },
      },
      DiskImages: [
        { Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl }, Volume: { Size: 8 } },
      ],
    })
  );
  return created.ConversionTask!;
}

async function importVolume(zone: string, sizeGib: number) {
  const stage = await staged(sizeGib);
  const created = await ec2.send(
    new ImportVolumeCommand({
      AvailabilityZone: zone,
      Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
      Volume: { Size: sizeGib },
    })
  );
  return { task: created.ConversionTask!, size: stage.size };
}

describe('ImportVolume and AttachVolume', () => {
  test('two imported volumes attach at /dev/sdf and /dev/sdg of a stopped imported instance', async () => {
    const boot = await importInstance();
    const instanceId = boot.ImportInstance!.InstanceId!;
    const a = await importVolume('us-east-1a', 9);
    // Not attachable while its import runs: the volume is `creating` (checked before the instance's state).
    const early = await failure(
      ec2.send(
        new AttachVolumeCommand({
          VolumeId: a.task.ImportVolume!.Volume!.Id!,
          InstanceId: instanceId,
          Device: '/dev/sdf',
        })
      )
    );
    assert.deepEqual([early.name, early.status], ['IncorrectState', 400]);
    const b = await importVolume('us-east-1a', 10);
    for (const v of [a, b]) {
      assert.match(v.task.ConversionTaskId!, /^import-vol-[0-9a-f]{17}$/);
      assert.match(v.task.ImportVolume!.Volume!.Id!, /^vol-[0-9a-f]{17}$/);
      assert.equal(v.task.ImportVolume!.AvailabilityZone, 'us-east-1a');
    }

    const [bootDone, aDone, bDone] = await Promise.all([boot, a.task, b.task].map((t) => settled(t.ConversionTaskId!)));
    assert.deepEqual(
      [bootDone!.State, aDone!.State, bDone!.State],
      ['completed', 'completed', 'completed'],
      JSON.stringify([bootDone, aDone, bDone])
    );
    // The volume side of DescribeConversionTasks once done: every byte converted, the volume's ID and size.
    assert.deepEqual(
      [aDone!.ImportVolume?.BytesConverted, aDone!.ImportVolume?.Image?.Size, aDone!.ImportVolume?.Volume?.Size],
      [a.size, a.size, 9]
    );
    const [va, vb] = [aDone!.ImportVolume!.Volume!.Id!, bDone!.ImportVolume!.Volume!.Id!];
    assert.equal((await volume(va)).State, 'available');

    const attached = await ec2.send(
      new AttachVolumeCommand({ VolumeId: va, InstanceId: instanceId, Device: '/dev/sdf' })
    );
    assert.deepEqual(
      [attached.VolumeId, attached.InstanceId, attached.Device, attached.State],
      [va, instanceId, '/dev/sdf', 'attaching']
    );
    assert.ok(attached.AttachTime instanceof Date);

    // The same device twice, the same volume twice: refused, nothing changes.
    const sameDevice = await failure(
      ec2.send(new AttachVolumeCommand({ VolumeId: vb, InstanceId: instanceId, Device: '/dev/sdf' }))
    );
    assert.deepEqual([sameDevice.name, sameDevice.status], ['InvalidParameterValue', 400]);
    assert.match(sameDevice.message, /Attachment point \/dev\/sdf is already in use/);
    const again = await failure(
      ec2.send(new AttachVolumeCommand({ VolumeId: va, InstanceId: instanceId, Device: '/dev/sdh' }))
    );
    assert.equal(again.name, 'VolumeInUse');
    const badDevice = await failure(
      ec2.send(new AttachVolumeCommand({ VolumeId: vb, InstanceId: instanceId, Device: '/dev/hda9' }))
    );
    assert.equal(badDevice.name, 'InvalidParameterValue');
    const dry = await failure(
      ec2.send(new AttachVolumeCommand({ VolumeId: vb, InstanceId: instanceId, Device: '/dev/sdg', DryRun: true }))
    );
    assert.deepEqual([dry.name, dry.status], ['DryRunOperation', 412]);
    assert.equal((await volume(vb)).State, 'available');

    await ec2.send(new AttachVolumeCommand({ VolumeId: vb, InstanceId: instanceId, Device: '/dev/sdg' }));
    const settledAttachments = await until(
      async () => [await volume(va), await volume(vb)],
      (vs) => vs.every((v) => v.Attachments?.[0]?.State === 'attached')
    );
    assert.deepEqual(
      settledAttachments.map((v) => [v.State, v.Size, v.Attachments?.[0]?.InstanceId, v.Attachments?.[0]?.Device]),
      [
        ['in-use', 9, instanceId, '/dev/sdf'],
        ['in-use', 10, instanceId, '/dev/sdg'],
      ]
    );
    const i = await instanceOf(instanceId);
    assert.deepEqual(
      i.BlockDeviceMappings?.map((m) => [m.DeviceName, m.Ebs?.VolumeId, m.Ebs?.Status]),
      [
        ['/dev/sda1', bootDone!.ImportInstance!.Volumes![0]!.Volume!.Id!, 'attached'],
        ['/dev/sdf', va, 'attached'],
        ['/dev/sdg', vb, 'attached'],
      ]
    );
    const byFilter = await ec2.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }] })
    );
    assert.equal(byFilter.Volumes?.length, 3);

    // Terminating the instance leaves its data volumes detached and deletable.
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    await until(
      () => volume(va),
      (v) => v.State === 'available'
    );
    await ec2.send(new DeleteVolumeCommand({ VolumeId: va }));
    assert.equal((await failure(volume(va))).name, 'InvalidVolume.NotFound');
  });

  test('a volume in another zone is refused (InvalidVolume.ZoneMismatch); an unknown zone is refused at import', async () => {
    const boot = await importInstance('us-east-1b');
    const other = await importVolume('us-east-1c', 8);
    const [bootDone, otherDone] = await Promise.all([
      settled(boot.ConversionTaskId!),
      settled(other.task.ConversionTaskId!),
    ]);
    assert.deepEqual([bootDone.State, otherDone.State], ['completed', 'completed']);
    const mismatch = await failure(
      ec2.send(
        new AttachVolumeCommand({
          VolumeId: otherDone.ImportVolume!.Volume!.Id!,
          InstanceId: bootDone.ImportInstance!.InstanceId!,
          Device: '/dev/sdf',
        })
      )
    );
    assert.deepEqual([mismatch.name, mismatch.status], ['InvalidVolume.ZoneMismatch', 400]);

    const stage = await staged();
    const unknownZone = await failure(
      ec2.send(
        new ImportVolumeCommand({
          AvailabilityZone: 'us-east-1z',
          Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
          Volume: { Size: 8 },
        })
      )
    );
    assert.deepEqual([unknownZone.name, unknownZone.status], ['InvalidParameterValue', 400]);
    const missing = await failure(
      ec2.send(
        new AttachVolumeCommand({
          VolumeId: otherDone.ImportVolume!.Volume!.Id!,
          InstanceId: bootDone.ImportInstance!.InstanceId!,
          Device: undefined,
        })
      )
    );
    assert.equal(missing.name, 'MissingParameter');
    const unknownVolume = await failure(
      ec2.send(
        new AttachVolumeCommand({
          VolumeId: 'vol-0123456789abcdef0',
          InstanceId: bootDone.ImportInstance!.InstanceId!,
          Device: '/dev/sdf',
        })
      )
    );
    assert.equal(unknownVolume.name, 'InvalidVolume.NotFound');
  });

  test('a lost ImportVolume answer: the call fails, the task exists and counts against the quota', async () => {
    const stage = await staged();
    const before = (await sim.state()).tasks.length;
    await sim.configure({ faults: { actions: ['ImportVolume'], lostImportResponseRate: 1 } });
    try {
      const lost = await failure(
        ec2.send(
          new ImportVolumeCommand({
            AvailabilityZone: 'us-east-1a',
            Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
            Volume: { Size: 8 },
          })
        )
      );
      assert.notEqual(lost.name, 'DryRunOperation');
    } finally {
      await sim.configure({ faults: DEFAULT_CONFIG.faults });
    }
    const tasks = (await sim.state()).tasks;
    assert.equal(tasks.length, before + 1);
    const made = tasks[tasks.length - 1]!;
    assert.match(made.id, /^import-vol-/);
    // The caller finds it by listing, as vmconvoy's adoption does.
    const listed = (await ec2.send(new DescribeConversionTasksCommand({}))).ConversionTasks!;
    assert.ok(listed.some((t) => t.ConversionTaskId === made.id && t.ImportVolume?.Volume?.Id === made.volumeId));
    const done = await settled(made.id);
    assert.equal(done.State, 'completed');
  });
});
