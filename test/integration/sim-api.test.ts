/**
 * The simulator as a process (`startSim`, as `vmconvoy sim` runs it) against the real @aws-sdk/client-ec2
 * and a real S3 server: Windows imports, ImportVolume, the instance/volume/tag actions and their filters,
 * DryRun on every kind of call, the control API, and every injected fault as the SDK sees it.
 */
import type { EC2ClientConfig, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import {
  DescribeSecurityGroupsCommand,
  CancelConversionTaskCommand,
  CreateTagsCommand,
  DescribeConversionTasksCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  EC2Client,
  ImportInstanceCommand,
  ImportVolumeCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG } from '../../sim/config';
import { stat } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { createActivities } from '../../activities';
import type { DiskFormat } from '../../common/contracts/migration';
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
    instanceTransitionSeconds: 0.2,
  },
};
/** Every fault rate 0 (the simulator's defaults). */
const NO_FAULTS = { faults: DEFAULT_CONFIG.faults };

let s3: TestS3;
let sim: TestSim;
let ec2: EC2Client;
let dir: { dir: string; remove(): Promise<void> };
let activities: ReturnType<typeof createActivities>;
let seq = 0;

const client = (extra: Partial<EC2ClientConfig> = {}) =>
  new EC2Client({ endpoint: sim.endpoint, region: 'us-east-1', credentials: CREDS, maxAttempts: 1, ...extra });

before(async () => {
  [s3, dir] = await Promise.all([startS3(), tempDir('vmconvoy-sim-api-')]);
  sim = await startSim({ config: FAST });
  ec2 = client();
  activities = createActivities({ config: localAwsConfig(s3, sim), qemuImg: false });
});
after(async () => {
  ec2?.destroy();
  await sim?.stop();
  await Promise.all([s3?.stop(), dir?.remove()]);
});

/** A raw image uploaded as parts with its manifest; what ImportInstance/ImportVolume need. */
async function staged(format: DiskFormat = 'RAW', opts: { marker?: string } = {}) {
  const vm = `api-${++seq}`;
  const image = await makeImage(dir.dir, `${vm}.img`, 'raw', { virtualMiB: 4, randomMiB: 2, marker: opts.marker });
  const { size } = await stat(image);
  const location = { batch: 'api', vm };
  await activities.uploadImage({ ...location, image, imageBytes: size, partSizeBytes: 1024 * 1024, concurrency: 4 });
  const manifest = await activities.writeManifest({
    ...location,
    format,
    imageBytes: size,
    volumeSizeGib: 8,
    partSizeBytes: 1024 * 1024,
    validUntil: new Date(Date.now() + 3600_000).toISOString(),
  });
  const manifestUrl = await getSignedUrl(
    s3.client,
    new GetObjectCommand({ Bucket: s3.bucket, Key: manifest.manifestKey }),
    { expiresIn: 3600 }
  );
  return { size, manifestUrl, manifestKey: manifest.manifestKey };
}

function importInput(
  stage: { size: number; manifestUrl: string },
  extra: Partial<ImportInstanceCommandInput> = {}
): ImportInstanceCommandInput {
  return {
    Platform: 'Windows',
    LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm5.large' },
    DiskImages: [
      { Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl }, Volume: { Size: 8 } },
    ],
    ...extra,
  };
}

const task = async (id: string) =>
  (await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!;
const settled = (id: string) =>
  until(
    () => task(id),
    (t) => t.State === 'completed' || t.State === 'cancelled'
  );
const instanceOf = async (id: string) =>
  (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;

async function failure(
  promise: Promise<unknown>
): Promise<{ name: string; message: string; status?: number; code?: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { name: string; message: string; code?: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode, code: e.code };
  }
  throw new Error('expected the call to fail');
}

/** An imported Windows instance, converted and stopped. */
async function importedWindows(extra: Partial<ImportInstanceCommandInput> = {}) {
  const stage = await staged();
  const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, extra)))).ConversionTask!.ConversionTaskId!;
  const done = await settled(id);
  assert.equal(done.State, 'completed', done.StatusMessage);
  return {
    taskId: id,
    instanceId: done.ImportInstance!.InstanceId!,
    volumeId: done.ImportInstance!.Volumes![0]!.Volume!.Id!,
  };
}

describe('imports', () => {
  test('a Windows import on m5.large with group IDs: platform windows, SecurityGroups, state code 80', async () => {
    // A group of the default network by its ID (ImportInstance refuses groups that do not exist).
    const sqlId = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['sql'] }))).SecurityGroups![0]!
      .GroupId!;
    const { taskId, instanceId, volumeId } = await importedWindows({
      Description: 'win & co',
      LaunchSpecification: {
        Architecture: 'i386',
        InstanceType: 'm5.large',
        GroupIds: [sqlId],
        GroupNames: ['rdp'],
        UserData: { Data: Buffer.from('<powershell/>').toString('base64') },
      },
    });
    const t = await task(taskId);
    assert.deepEqual(
      [t.ImportInstance!.Platform, t.ImportInstance!.Description, t.StatusMessage],
      ['Windows', 'win & co', '']
    );
    const i = await instanceOf(instanceId);
    assert.deepEqual(
      [i.Platform, i.Architecture, i.InstanceType, i.State?.Code, i.State?.Name, i.Placement?.AvailabilityZone],
      ['windows', 'i386', 'm5.large', 80, 'stopped', 'us-east-1a']
    );
    assert.deepEqual(
      i.SecurityGroups?.map((g) => g.GroupName ?? g.GroupId),
      ['rdp', sqlId]
    );
    assert.deepEqual(
      [i.RootDeviceName, i.BlockDeviceMappings?.[0]?.DeviceName, i.BlockDeviceMappings?.[0]?.Ebs?.VolumeId],
      ['/dev/sda1', '/dev/sda1', volumeId]
    );
    for (const type of ['t3.large', 'c5.xlarge', 'm5.xlarge']) {
      const dry = await failure(
        ec2.send(
          new ImportInstanceCommand({
            ...importInput(await staged()),
            DryRun: true,
            LaunchSpecification: { Architecture: 'x86_64', InstanceType: type as 'm5.large' },
          })
        )
      );
      assert.equal(dry.name, 'DryRunOperation', type);
    }
  });

  test('while converting, the instance is pending and cannot be started', async () => {
    await sim.configure({ speed: { conversionBytesPerSecond: 256 * 1024 } });
    try {
      const stage = await staged();
      const created = (await ec2.send(new ImportInstanceCommand(importInput(stage)))).ConversionTask!;
      const instanceId = created.ImportInstance!.InstanceId!;
      assert.match(instanceId, /^i-[0-9a-f]{17}$/);
      assert.match(created.ImportInstance!.Volumes![0]!.Volume!.Id!, /^vol-[0-9a-f]{17}$/);
      assert.equal((await instanceOf(instanceId)).State?.Name, 'pending');
      const err = await failure(ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] })));
      assert.match(err.message, /Instance does not have a volume attached at root \(\/dev\/sda1\)/);
      await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: created.ConversionTaskId! }));
      await settled(created.ConversionTaskId!);
      assert.equal(
        (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [instanceId] }] })))
          .Reservations?.length ?? 0,
        0,
        'gone after cancel'
      );
    } finally {
      await sim.configure(FAST);
    }
  });

  test('ImportVolume: import-vol- task with importVolume details, ends as an available volume', async () => {
    const stage = await staged();
    const missing = await failure(
      ec2.send(
        new ImportVolumeCommand({
          Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
          Volume: undefined,
        })
      )
    );
    assert.deepEqual([missing.name, missing.status], ['MissingParameter', 400]);
    const created = await ec2.send(
      new ImportVolumeCommand({
        AvailabilityZone: 'us-east-1c',
        Description: 'data',
        Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
        Volume: { Size: 8 },
      })
    );
    const t = created.ConversionTask!;
    assert.match(t.ConversionTaskId!, /^import-vol-[0-9a-z]+$/);
    assert.deepEqual(
      [t.ImportVolume?.AvailabilityZone, t.ImportVolume?.Image?.Size, t.ImportVolume?.Volume?.Size, t.ImportInstance],
      ['us-east-1c', stage.size, 8, undefined]
    );
    const done = await settled(t.ConversionTaskId!);
    assert.equal(done.State, 'completed');
    const volume = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [t.ImportVolume!.Volume!.Id!] })))
      .Volumes![0]!;
    assert.deepEqual(
      [volume.State, volume.Size, volume.AvailabilityZone, volume.Attachments?.length ?? 0],
      ['available', 8, 'us-east-1c', 0]
    );
  });

  test('an image with the failure marker, and an AWS-initiated cancellation, end cancelled with their messages', async () => {
    const marked = await staged('RAW', { marker: 'VMCONVOY_SIM_FAIL=ClientError: Unknown OS / Missing OS files' });
    const a = (await ec2.send(new ImportInstanceCommand(importInput(marked)))).ConversionTask!.ConversionTaskId!;
    const failed = await settled(a);
    assert.deepEqual([failed.State, failed.StatusMessage], ['cancelled', 'ClientError: Unknown OS / Missing OS files']);
    await sim.configure({ faults: { awsCancelRate: 1 } });
    try {
      const b = (await ec2.send(new ImportInstanceCommand(importInput(await staged())))).ConversionTask!
        .ConversionTaskId!;
      const done = await settled(b);
      assert.deepEqual(
        [done.State, done.StatusMessage],
        ['cancelled', 'SERVER_ERROR : conversion : AWS initiated task cancellation']
      );
    } finally {
      await sim.configure(NO_FAULTS);
    }
  });

  test('an expired manifest URL is unreadable: the task keeps waiting', async () => {
    const stage = await staged();
    const shortLived = await getSignedUrl(
      s3.client,
      new GetObjectCommand({ Bucket: s3.bucket, Key: stage.manifestKey }),
      { expiresIn: 1 }
    );
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await fetch(shortLived)).ok, false, 'the S3 server refuses the expired URL');
    const id = (await ec2.send(new ImportInstanceCommand(importInput({ ...stage, manifestUrl: shortLived }))))
      .ConversionTask!.ConversionTaskId!;
    await new Promise((r) => setTimeout(r, 500));
    const t = await task(id);
    assert.deepEqual(
      [t.State, t.StatusMessage, t.ImportInstance!.Volumes![0]!.BytesConverted],
      ['active', 'Pending', 0]
    );
    await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id }));
  });
});

describe('instances, volumes and tags', () => {
  test('CreateTags, DescribeTags (resource-id, key) and tag:/state/volume filters', async () => {
    const { instanceId, volumeId } = await importedWindows();
    await ec2.send(
      new CreateTagsCommand({
        Resources: [instanceId, volumeId],
        Tags: [
          { Key: 'Name', Value: `web-${instanceId}` },
          { Key: 'team', Value: 'a' },
        ],
      })
    );
    const tags = (await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [instanceId] }] })))
      .Tags!;
    assert.deepEqual(
      tags.map((t) => [t.ResourceId, t.ResourceType, t.Key, t.Value]),
      [
        [instanceId, 'instance', 'Name', `web-${instanceId}`],
        [instanceId, 'instance', 'team', 'a'],
      ]
    );
    const byKey = (
      await ec2.send(
        new DescribeTagsCommand({
          Filters: [
            { Name: 'resource-id', Values: [instanceId, volumeId] },
            { Name: 'key', Values: ['team'] },
          ],
        })
      )
    ).Tags!;
    assert.deepEqual(byKey.map((t) => t.ResourceId).sort(), [instanceId, volumeId].sort());
    const byTag = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:Name', Values: [`web-${instanceId}`] },
          { Name: 'instance-state-name', Values: ['stopped'] },
        ],
      })
    );
    assert.deepEqual(
      byTag.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId)),
      [instanceId]
    );
    assert.deepEqual((await instanceOf(instanceId)).Tags?.find((t) => t.Key === 'team')?.Value, 'a');
    const running = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:Name', Values: [`web-${instanceId}`] },
          { Name: 'instance-state-name', Values: ['running'] },
        ],
      })
    );
    assert.equal(running.Reservations?.length ?? 0, 0);
    const volumes = (
      await ec2.send(
        new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }] })
      )
    ).Volumes!;
    assert.deepEqual(
      volumes.map((v) => [v.VolumeId, v.Attachments?.[0]?.InstanceId, v.Attachments?.[0]?.State, v.Tags?.length]),
      [[volumeId, instanceId, 'attached', 2]]
    );
    assert.equal(
      (await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] }))).Volumes!
        .length,
      1
    );
    assert.equal(
      (
        await failure(
          ec2.send(new CreateTagsCommand({ Resources: ['i-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] }))
        )
      ).status,
      400
    );
  });

  test('start → running with status ok, stop → stopped, terminate → terminated; DescribeInstanceStatus follows', async () => {
    const { instanceId } = await importedWindows();
    const started = await ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }));
    assert.deepEqual(
      [started.StartingInstances![0]!.PreviousState?.Name, started.StartingInstances![0]!.CurrentState?.Name],
      ['stopped', 'pending']
    );
    const status = () =>
      ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId], IncludeAllInstances: true }));
    const ok = await until(status, (s) => s.InstanceStatuses?.[0]?.InstanceStatus?.Status === 'ok');
    assert.deepEqual(
      [
        ok.InstanceStatuses![0]!.InstanceState?.Name,
        ok.InstanceStatuses![0]!.SystemStatus?.Status,
        ok.InstanceStatuses![0]!.AvailabilityZone,
      ],
      ['running', 'ok', 'us-east-1a']
    );
    const stopped = await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
    assert.equal(stopped.StoppingInstances![0]!.CurrentState?.Name, 'stopping');
    await until(
      () => instanceOf(instanceId),
      (i) => i.State?.Name === 'stopped'
    );
    assert.equal(
      (await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [instanceId] }))).InstanceStatuses?.length ?? 0,
      0,
      'only running instances without IncludeAllInstances'
    );
    const terminated = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    assert.equal(terminated.TerminatingInstances![0]!.CurrentState?.Name, 'shutting-down');
    const gone = await until(
      () => instanceOf(instanceId),
      (i) => i.State?.Name === 'terminated'
    );
    assert.equal(gone.State?.Code, 48);
    assert.equal(
      (await failure(ec2.send(new StopInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).name,
      'InvalidInstanceID.NotFound'
    );
  });

  test('DryRun on describe, cancel, tag and start calls: 412 and nothing changes; DescribeConversionTasks without IDs lists all', async () => {
    const stage = await staged();
    await sim.configure({ speed: { conversionBytesPerSecond: 64 * 1024 } });
    try {
      const id = (await ec2.send(new ImportInstanceCommand(importInput(stage)))).ConversionTask!.ConversionTaskId!;
      const instanceId = (await task(id)).ImportInstance!.InstanceId!;
      // Thunks, sent one at a time: four promises created at once would reject before they are awaited.
      for (const call of [
        () => ec2.send(new DescribeConversionTasksCommand({ DryRun: true })),
        () => ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id, DryRun: true })),
        () =>
          ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'k', Value: 'v' }], DryRun: true })),
        () => ec2.send(new DescribeInstancesCommand({ DryRun: true })),
      ]) {
        const err = await failure(call());
        assert.deepEqual(
          [err.name, err.status, err.message],
          ['DryRunOperation', 412, 'Request would have succeeded, but DryRun flag is set.']
        );
      }
      assert.equal((await task(id)).State, 'active');
      assert.equal((await instanceOf(instanceId)).Tags?.length ?? 0, 0);
      const all = (await ec2.send(new DescribeConversionTasksCommand({}))).ConversionTasks!.map(
        (t) => t.ConversionTaskId
      );
      assert.ok(all.includes(id) && all.length === (await sim.state()).tasks.length, 'every task');
      await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id }));
    } finally {
      await sim.configure(FAST);
    }
  });
});

describe('control API', () => {
  test('/_sim/state counts calls per action and shows manifest URLs without their signature; /_sim/reset clears', async () => {
    await fetch(`${sim.controlUrl}/reset`, { method: 'POST' });
    const stage = await staged();
    const id = (await ec2.send(new ImportInstanceCommand(importInput(stage)))).ConversionTask!.ConversionTaskId!;
    await ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }));
    await ec2.send(new DescribeConversionTasksCommand({}));
    await failure(ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: ['bad'] })));
    await settled(id);
    const state = await sim.state();
    assert.equal(state.calls.ImportInstance, 1);
    assert.ok(state.calls.DescribeConversionTasks! >= 4);
    const t = state.tasks.find((x) => x.id === id)! as (typeof state.tasks)[number] & { createdAt: string };
    assert.equal(t.manifestUrl, stage.manifestUrl.split('?')[0]);
    assert.doesNotMatch(JSON.stringify(state), /X-Amz-Signature/);
    assert.deepEqual([t.state, t.bytesConverted, t.bytes], ['completed', stage.size, stage.size]);
    assert.ok(Math.abs(Date.parse(t.createdAt) - Date.now()) < 60_000);
    assert.equal(state.instances.find((i) => i.instanceId === t.instanceId)?.state, 'stopped');
    assert.equal(state.volumes.find((v) => v.volumeId === t.volumeId)?.instanceId, t.instanceId);
    await fetch(`${sim.controlUrl}/reset`, { method: 'POST' });
    const empty = await sim.state();
    assert.deepEqual(
      [empty.tasks.length, empty.instances.length, empty.volumes.length, Object.keys(empty.calls).length],
      [0, 0, 0, 0]
    );
  });

  test('/_sim/config returns the whole merged config; bad JSON and bad values are 400 with the reason', async () => {
    const merged = (await sim.configure({ limits: { maxActiveConversions: 7 } })) as {
      limits: { maxActiveConversions: number; mutatingBurst: number };
      speed: { stepSeconds: number };
    };
    assert.deepEqual(
      [merged.limits.maxActiveConversions, merged.limits.mutatingBurst, merged.speed.stepSeconds],
      [7, 50, 0.1]
    );
    const now = (await (await fetch(`${sim.controlUrl}/config`)).json()) as typeof merged;
    assert.equal(now.limits.maxActiveConversions, 7);
    const badJson = await fetch(`${sim.controlUrl}/config`, { method: 'POST', body: '{not json' });
    assert.equal(badJson.status, 400);
    assert.match(await badJson.text(), /not JSON/);
    const badValue = await fetch(`${sim.controlUrl}/config`, {
      method: 'POST',
      body: JSON.stringify({ faults: { hangRate: 3 } }),
    });
    assert.equal(badValue.status, 400);
    assert.match(await badValue.text(), /faults\.hangRate/);
    await sim.configure({ limits: { maxActiveConversions: 5 } });
  });
});

describe('faults as the SDK sees them', () => {
  const only = async (faults: Record<string, unknown>, fn: () => Promise<void>) => {
    await sim.configure({ faults: { ...NO_FAULTS.faults, ...faults } });
    try {
      await fn();
    } finally {
      await sim.configure(NO_FAULTS);
    }
  };
  const describeAll = (c = ec2, signal?: AbortSignal) =>
    c.send(new DescribeConversionTasksCommand({}), { abortSignal: signal });

  test('Unavailable (503), InternalError (500) and throttling regardless of the buckets (503)', async () => {
    await only({ unavailableRate: 1 }, async () => {
      const err = await failure(describeAll());
      assert.deepEqual([err.name, err.status], ['Unavailable', 503]);
    });
    await only({ internalErrorRate: 1 }, async () => {
      const err = await failure(describeAll());
      assert.deepEqual([err.name, err.status], ['InternalError', 500]);
    });
    await only({ throttleRate: 1 }, async () => {
      const err = await failure(describeAll());
      assert.deepEqual([err.name, err.status, err.message], ['RequestLimitExceeded', 503, 'Request limit exceeded.']);
      assert.equal((await fetch(`${sim.controlUrl}/state`)).status, 200, 'never on the control API');
    });
  });

  test('faults.actions limits faults to the named actions', async () => {
    await only({ internalErrorRate: 1, actions: ['DescribeInstances'] }, async () => {
      await describeAll();
      assert.equal((await failure(ec2.send(new DescribeInstancesCommand({})))).name, 'InternalError');
    });
  });

  test('a reset connection creates nothing; a lost ImportInstance response still creates the task', async () => {
    const stage = await staged();
    const before = (await sim.state()).tasks.length;
    await only({ connectionResetRate: 1 }, async () => {
      const err = await failure(ec2.send(new ImportInstanceCommand(importInput(stage))));
      assert.match(`${err.code} ${err.name} ${err.message}`, /ECONNRESET|socket hang up/);
    });
    assert.equal((await sim.state()).tasks.length, before);
    await only({ lostImportResponseRate: 1 }, async () => {
      await failure(ec2.send(new ImportInstanceCommand(importInput(stage))));
      const tasks = (await ec2.send(new DescribeConversionTasksCommand({}))).ConversionTasks!;
      assert.equal(tasks.length, before + 1, 'describe is not affected and shows the new task');
    });
    for (const t of (await sim.state()).tasks)
      if (t.state === 'active') await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: t.id }));
  });

  test('malformed XML and an HTML page with status 200 make the SDK fail to parse; an oversized body still parses', async () => {
    await only({ malformedXmlRate: 1 }, async () => {
      const err = await failure(describeAll());
      assert.match(err.message, /XML parse error/);
    });
    await only({ wrongContentTypeRate: 1 }, async () => {
      const raw = await fetch(`${sim.endpoint}/`, { method: 'POST' });
      assert.equal(raw.status, 401, 'unsigned requests are refused before any fault');
      // The SDK does not look at the content type: an HTML 200 parses to an output without any field.
      const res = await describeAll();
      assert.deepEqual([res.$metadata.httpStatusCode, res.ConversionTasks], [200, undefined]);
    });
    await only({ oversizedBodyRate: 1, oversizedBodyBytes: 6 * 1024 * 1024 }, async () => {
      // Read the raw length the SDK received, below its XML parser.
      let length = 0;
      const sized = client();
      sized.middlewareStack.add(
        (next) => async (args) => {
          const out = await next(args);
          length = Number((out.response as { headers: Record<string, string> }).headers['content-length']);
          return out;
        },
        { step: 'deserialize', name: 'rawLength' }
      );
      const res = await describeAll(sized);
      sized.destroy();
      assert.ok(length > 6 * 1024 * 1024, `${length} bytes`);
      assert.ok(Array.isArray(res.ConversionTasks));
      const raw = await sim.state(); // unaffected: faults never touch /_sim
      assert.ok(raw.calls.DescribeConversionTasks! > 0);
    });
  });

  test('a hung response times the client out; a slow one arrives after slowResponseMs', async () => {
    await only({ hangRate: 1 }, async () => {
      const started = Date.now();
      const err = await failure(describeAll(ec2, AbortSignal.timeout(700)));
      assert.match(`${err.name} ${err.message}`, /Abort|Timeout/i);
      assert.ok(Date.now() - started >= 650);
    });
    await only({ slowResponseRate: 1, slowResponseMs: 600 }, async () => {
      const started = Date.now();
      await describeAll();
      assert.ok(Date.now() - started >= 580, `${Date.now() - started} ms`);
    });
  });

  test('describe calls have their own bucket: exhausted → RequestLimitExceeded; the same seed repeats the same faults', async () => {
    await sim.configure({ limits: { describeBurst: 3, describeRefillPerSecond: 0.01 } });
    try {
      await describeAll();
      await describeAll();
      await describeAll();
      assert.equal((await failure(describeAll())).name, 'RequestLimitExceeded');
    } finally {
      await sim.configure({ limits: { describeBurst: 100, describeRefillPerSecond: 20 } });
    }
    const pattern = async () => {
      await sim.configure({ faults: { ...NO_FAULTS.faults, seed: 7, internalErrorRate: 0.5 } });
      await fetch(`${sim.controlUrl}/reset`, { method: 'POST' });
      const out: string[] = [];
      for (let i = 0; i < 12; i++)
        out.push(
          await describeAll().then(
            () => 'ok',
            (e: Error) => e.name
          )
        );
      return out;
    };
    try {
      const a = await pattern();
      assert.ok(a.includes('ok') && a.includes('InternalError'), a.join());
      assert.deepEqual(await pattern(), a);
    } finally {
      await sim.configure(NO_FAULTS);
    }
  });
});
