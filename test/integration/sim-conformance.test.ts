/**
 * The EC2 simulator against the real @aws-sdk/client-ec2 over HTTP, and a real S3 server holding the
 * manifests and parts it reads through presigned URLs: protocol, validation, lifecycle per image format,
 * manifest checks, cancel, expiry, throttling, quota, signatures, restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import {
  CancelConversionTaskCommand,
  CreateTagsCommand,
  DescribeConversionTasksCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
  ImportInstanceCommand,
  ImportVolumeCommand,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { createActivities } from '../../activities';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import type { ImageKind } from '../helpers/images';
import { makeImage } from '../helpers/images';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, RANDOM_IMAGES, startS3, startSim, tempDir } from '../helpers/testbed';
import type { DiskFormat } from '../../common/contracts/migration';
import { until } from '../helpers/wait';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
const FAST = {
  ...RANDOM_IMAGES,
  speed: { conversionBytesPerSecond: 512 * 1024 * 1024, stepSeconds: 0.1, pendingPollMs: 100, cancelSeconds: 0.2 },
};

let s3: TestS3;
let sim: Simulator;
let ec2: EC2Client;
let dir: { dir: string; remove(): Promise<void> };
let activities: ReturnType<typeof createActivities>;
let seq = 0;

before(async () => {
  [s3, dir] = await Promise.all([startS3(), tempDir('vmconvoy-conformance-')]);
  sim = await startSimulator({ config: FAST });
  ec2 = new EC2Client({ endpoint: sim.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
  activities = createActivities({ config: localAwsConfig(s3, { endpoint: sim.url }), qemuImg: false });
});
after(async () => {
  ec2?.destroy();
  await sim?.close();
  await Promise.all([s3?.stop(), dir?.remove()]);
});

/** Makes an image, uploads it as parts and writes its manifest; returns what ImportInstance needs. */
async function staged(kind: ImageKind, format: DiskFormat, opts: { marker?: string } = {}) {
  const vm = `vm-${++seq}`;
  const image = await makeImage(dir.dir, `${vm}.img`, kind, { virtualMiB: 16, randomMiB: 3, marker: opts.marker });
  const { size } = await import('node:fs/promises').then((fs) => fs.stat(image));
  const location = { batch: 'conformance', vm };
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
  return { vm, size, manifestUrl, manifestKey: manifest.manifestKey };
}

function importInput(
  stage: { size: number; manifestUrl: string },
  format: string,
  extra: Partial<ImportInstanceCommandInput> = {}
): ImportInstanceCommandInput {
  return {
    Platform: 'Linux' as 'Windows', // the SDK's enum lists only Windows; EC2 took Linux from the old tools
    Description: 'conformance',
    LaunchSpecification: { Architecture: 'x86_64', InstanceType: 't2.medium' },
    DiskImages: [
      {
        Image: { Format: format as 'VMDK', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
        Volume: { Size: 8 },
      },
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

async function ec2Error(promise: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected an EC2 error');
}

/** A raw signed Query call, for what the SDK will not send (GET, 2013 spellings). */
async function signedCall(
  params: Record<string, string>,
  method: 'GET' | 'POST' = 'POST',
  secret = CREDS.secretAccessKey
) {
  const url = new URL(sim.url);
  const body = new URLSearchParams(params).toString();
  const signer = new SignatureV4({
    service: 'ec2',
    region: 'us-east-1',
    credentials: { ...CREDS, secretAccessKey: secret },
    sha256: Sha256,
  });
  const request = {
    method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    query: method === 'GET' ? params : {},
    headers: { host: url.host, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    body: method === 'POST' ? body : undefined,
  };
  const signed = await signer.sign(request);
  const res = await fetch(method === 'GET' ? `${sim.url}/?${body}` : `${sim.url}/`, {
    method,
    headers: signed.headers,
    body: request.body,
  });
  return { status: res.status, text: await res.text(), requestId: res.headers.get('x-amzn-requestid') };
}

describe('protocol and signatures', () => {
  test('an unsigned request and a wrongly signed one get AuthFailure (401) in the EC2 error envelope', async () => {
    const unsigned = await fetch(`${sim.url}/`, {
      method: 'POST',
      body: 'Action=DescribeConversionTasks&Version=2016-11-15',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(unsigned.status, 401);
    assert.match(
      await unsigned.text(),
      /<Response><Errors><Error><Code>AuthFailure<\/Code><Message>.+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>/
    );
    const wrong = new EC2Client({
      endpoint: sim.url,
      region: 'us-east-1',
      credentials: { ...CREDS, secretAccessKey: 'not-the-secret' },
      maxAttempts: 1,
    });
    const err = await ec2Error(wrong.send(new DescribeConversionTasksCommand({})));
    assert.deepEqual([err.name, err.status], ['AuthFailure', 401]);
    const otherRegion = new EC2Client({ endpoint: sim.url, region: 'eu-west-1', credentials: CREDS, maxAttempts: 1 });
    assert.equal((await ec2Error(otherRegion.send(new DescribeConversionTasksCommand({})))).name, 'AuthFailure');
  });

  test('GET with a query string works; responses carry requestId in body and x-amzn-requestid header, in the namespace of the requested version; unknown actions are InvalidAction, unknown versions NoSuchVersion', async () => {
    const get = await signedCall({ Action: 'DescribeConversionTasks', Version: '2013-02-01' }, 'GET');
    assert.equal(get.status, 200);
    assert.match(
      get.text,
      /<DescribeConversionTasksResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2013-02-01\/"><requestId>([0-9a-f-]{36})<\/requestId>/
    );
    assert.ok(get.text.includes(`<requestId>${get.requestId}</requestId>`));
    const unknown = await signedCall({ Action: 'LaunchRockets', Version: '2016-11-15' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /<Code>InvalidAction<\/Code>/);
    const version = await signedCall({ Action: 'DescribeConversionTasks', Version: '2009-01-01' });
    assert.equal(version.status, 400);
    assert.match(
      version.text,
      /<Code>NoSuchVersion<\/Code><Message>The requested version \(2009-01-01\) of service AmazonEC2 does not exist/
    );
    assert.equal(
      version.requestId,
      /<RequestID>([^<]+)</.exec(version.text)?.[1],
      'x-amzn-requestid matches the body RequestID'
    );
  });

  test('the 2013-02-01 spellings UserData and Monitoring.Enabled are accepted', async () => {
    const stage = await staged('raw', 'RAW');
    const res = await signedCall({
      Action: 'ImportInstance',
      Version: '2013-02-01',
      Platform: 'Linux',
      'LaunchSpecification.Architecture': 'x86_64',
      'LaunchSpecification.InstanceType': 'c3.large',
      'LaunchSpecification.UserData': Buffer.from('#!/bin/sh\n').toString('base64'),
      'LaunchSpecification.Monitoring.Enabled': 'true',
      'DiskImage.1.Image.Format': 'RAW',
      'DiskImage.1.Image.Bytes': String(stage.size),
      'DiskImage.1.Image.ImportManifestUrl': stage.manifestUrl,
      'DiskImage.1.Volume.Size': '8',
    });
    assert.equal(res.status, 200, res.text);
    const id = /<conversionTaskId>([^<]+)</.exec(res.text)![1]!;
    assert.equal((await settled(id)).State, 'completed');
    const instanceId = (await task(id)).ImportInstance!.InstanceId!;
    const instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0]!
      .Instances![0]!;
    assert.equal(instance.Monitoring?.State, 'enabled');
    assert.equal(instance.InstanceType, 'c3.large');
  });
});

describe('validation as EC2 does it', () => {
  test('missing, invalid and contradictory parameters are refused with EC2 codes; nothing is created', async () => {
    const stage = await staged('raw', 'RAW');
    const before = sim.model.state.tasks.length;
    const cases: Array<[Partial<ImportInstanceCommandInput>, string, RegExp]> = [
      [{ Platform: undefined }, 'MissingParameter', /Platform/],
      [{ Platform: 'Solaris' as 'Windows' }, 'InvalidParameterValue', /Platform/],
      [
        {
          DiskImages: [
            {
              Image: { Format: 'vmdk' as 'VMDK', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
              Volume: { Size: 8 },
            },
          ],
        },
        'InvalidParameterValue',
        /Format/,
      ],
      [{ DiskImages: [] }, 'MissingParameter', /DiskImage/],
      [
        { LaunchSpecification: { Architecture: 'arm64', InstanceType: 't2.medium' } },
        'InvalidParameterValue',
        /Architecture/,
      ],
      [
        {
          LaunchSpecification: {
            Architecture: 'x86_64',
            InstanceType: 't2.medium',
            InstanceInitiatedShutdownBehavior: 'halt' as 'stop',
          },
        },
        'InvalidParameterValue',
        /Shutdown/,
      ],
      [
        { LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm5.large' } },
        'InvalidParameterValue',
        /Linux is not supported on the requested instance/,
      ],
      [
        {
          Platform: 'Windows',
          LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'z9.galactic' as 't2.medium' },
        },
        'InvalidParameterValue',
        /InstanceType/,
      ],
      // No default is invented for either (the 2013-02-01 reference requires both).
      [{ LaunchSpecification: { Architecture: 'x86_64' } }, 'MissingParameter', /LaunchSpecification\.InstanceType/],
      [{ LaunchSpecification: { InstanceType: 't2.medium' } }, 'MissingParameter', /LaunchSpecification\.Architecture/],
      [
        {
          DiskImages: [
            { Image: { Format: 'RAW', ImportManifestUrl: stage.manifestUrl, Bytes: undefined }, Volume: { Size: 8 } },
          ],
        },
        'MissingParameter',
        /Image\.Bytes/,
      ],
      [
        {
          DiskImages: [
            { Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: undefined }, Volume: { Size: 8 } },
          ],
        },
        'MissingParameter',
        /ImportManifestUrl/,
      ],
      [
        {
          DiskImages: [
            { Image: { Format: 'RAW', Bytes: stage.size, ImportManifestUrl: stage.manifestUrl }, Volume: undefined },
          ],
        },
        'MissingParameter',
        /Volume\.Size/,
      ],
    ];
    for (const [override, code, message] of cases) {
      const err = await ec2Error(ec2.send(new ImportInstanceCommand({ ...importInput(stage, 'RAW'), ...override })));
      assert.equal(err.name, code, JSON.stringify(override));
      assert.match(err.message, message);
      assert.equal(err.status, 400);
    }
    const image = {
      Image: { Format: 'RAW' as const, Bytes: stage.size, ImportManifestUrl: stage.manifestUrl },
      Volume: { Size: 8 },
    };
    const two = await ec2Error(
      ec2.send(new ImportInstanceCommand({ ...importInput(stage, 'RAW'), DiskImages: [image, image] }))
    );
    assert.equal(two.name, 'InvalidParameterCombination');
    const windowsOk = await ec2Error(
      ec2.send(
        new ImportInstanceCommand({
          ...importInput(stage, 'RAW'),
          Platform: 'Windows',
          DryRun: true,
          LaunchSpecification: { Architecture: 'x86_64', InstanceType: 'm5.large' },
        })
      )
    );
    assert.deepEqual(
      [windowsOk.name, windowsOk.status, windowsOk.message],
      ['DryRunOperation', 412, 'Request would have succeeded, but DryRun flag is set.']
    );
    assert.equal(sim.model.state.tasks.length, before, 'nothing created');
  });

  test('a misspelt parameter is UnknownParameter (400) and creates nothing, where it used to be ignored for a default', async () => {
    const stage = await staged('raw', 'RAW');
    const before = sim.model.state.tasks.length;
    const res = await signedCall({
      Action: 'ImportInstance',
      Version: '2016-11-15',
      Platform: 'Linux',
      'LaunchSpecification.Architecture': 'x86_64',
      'LaunchSpecification.InstanceTyp': 'c5.large',
      'DiskImage.1.Image.Format': 'RAW',
      'DiskImage.1.Image.Bytes': String(stage.size),
      'DiskImage.1.Image.ImportManifestUrl': stage.manifestUrl,
      'DiskImage.1.Volume.Size': '8',
    });
    assert.equal(res.status, 400);
    assert.match(
      res.text,
      /<Code>UnknownParameter<\/Code><Message>The parameter LaunchSpecification\.InstanceTyp is not recognized<\/Message>/
    );
    const filtered = await signedCall({
      Action: 'DescribeConversionTasks',
      Version: '2016-11-15',
      'Filter.1.Name': 'state',
      'Filter.1.Value.1': 'active',
    });
    assert.equal(filtered.status, 400);
    assert.match(filtered.text, /<Code>UnknownParameter<\/Code>/);
    assert.equal(sim.model.state.tasks.length, before, 'nothing created');
  });

  test('malformed and unknown task IDs are told apart', async () => {
    assert.equal(
      (await ec2Error(ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: ['task-1'] })))).name,
      'InvalidConversionTaskId.Malformed'
    );
    assert.equal(
      (await ec2Error(ec2.send(new DescribeConversionTasksCommand({ ConversionTaskIds: ['import-i-zzzz9999'] })))).name,
      'InvalidConversionTaskId'
    );
    assert.equal(
      (await ec2Error(ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: 'nope' })))).name,
      'InvalidConversionTaskId.Malformed'
    );
  });
});

describe('conversion lifecycle', () => {
  for (const [kind, format] of [
    ['stream-vmdk', 'VMDK'],
    ['fixed-vhd', 'VHD'],
    ['dynamic-vhd', 'VHD'],
    ['raw', 'RAW'],
  ] as Array<[ImageKind, DiskFormat]>) {
    test(`a ${kind} image converts to a stopped instance with its launch settings and an 8 GiB root volume at /dev/sda1`, async () => {
      const stage = await staged(kind, format);
      const created = await ec2.send(
        new ImportInstanceCommand(
          importInput(stage, format, {
            LaunchSpecification: {
              Architecture: 'x86_64',
              InstanceType: 'm3.large',
              SubnetId: 'subnet-0e5f6a7b',
              PrivateIpAddress: '172.31.112.10',
              GroupNames: ['web'],
              Monitoring: true,
              InstanceInitiatedShutdownBehavior: 'terminate',
              Placement: { AvailabilityZone: 'us-east-1b' },
            },
          })
        )
      );
      const t = created.ConversionTask!;
      assert.match(t.ConversionTaskId!, /^import-i-[0-9a-f]{17}$/);
      assert.equal(t.State, 'active');
      assert.equal(typeof t.ExpirationTime, 'string');
      const vol = t.ImportInstance!.Volumes![0]!;
      assert.deepEqual(
        [vol.Image!.Format, vol.Image!.Size, vol.Volume!.Size, vol.BytesConverted],
        [format, stage.size, 8, 0]
      );
      assert.equal(vol.Image!.ImportManifestUrl, stage.manifestUrl, '& survived XML escaping');
      // (Progress steps are asserted in sim-upload.test.ts, with a slower conversion.)
      const done = await until(
        () => task(t.ConversionTaskId!),
        (x) => x.State !== 'active'
      );
      assert.equal(done.State, 'completed', done.StatusMessage);
      assert.equal(done.ImportInstance!.Volumes![0]!.BytesConverted, stage.size);
      const instance = (
        await ec2.send(new DescribeInstancesCommand({ InstanceIds: [done.ImportInstance!.InstanceId!] }))
      ).Reservations![0]!.Instances![0]!;
      assert.equal(instance.State?.Name, 'stopped');
      assert.deepEqual(
        [
          instance.InstanceType,
          instance.Architecture,
          instance.SubnetId,
          instance.PrivateIpAddress,
          instance.Placement?.AvailabilityZone,
          instance.RootDeviceName,
        ],
        ['m3.large', 'x86_64', 'subnet-0e5f6a7b', '172.31.112.10', 'us-east-1b', '/dev/sda1']
      );
      assert.deepEqual(
        instance.SecurityGroups?.map((g) => g.GroupName),
        ['web']
      );
      assert.equal(instance.BlockDeviceMappings?.length, 1);
      const volumeId = instance.BlockDeviceMappings[0]!.Ebs!.VolumeId!;
      const volume = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
      assert.deepEqual([volume.Size, volume.State, volume.Attachments?.[0]?.Device], [8, 'in-use', '/dev/sda1']);
    });
  }

  for (const [kind, format, message] of [
    ['sparse-vmdk', 'VMDK', /Unsupported VMDK File Format/],
    ['differencing-vhd', 'VHD', /differencing/],
    ['vhdx', 'VHD', /Invalid VHD footer/],
    ['qcow2', 'VMDK', /^ClientError: Disk validation failed \[Unsupported VMDK File Format\]$/],
  ] as Array<[ImageKind, DiskFormat, RegExp]>) {
    test(`a ${kind} image is refused by the conversion with EC2's message`, async () => {
      const stage = await staged(kind, format);
      const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, format)))).ConversionTask!
        .ConversionTaskId!;
      const done = await settled(id);
      assert.equal(done.State, 'cancelled');
      assert.match(done.StatusMessage!, message);
      assert.equal(
        sim.model.state.instances.some((i) => i.instanceId === done.ImportInstance?.InstanceId),
        false,
        'nothing left behind'
      );
    });
  }

  test('a manifest that does not match the request fails the task', async () => {
    const stage = await staged('raw', 'RAW');
    const id = (await ec2.send(new ImportInstanceCommand(importInput({ ...stage, size: stage.size + 1 }, 'RAW'))))
      .ConversionTask!.ConversionTaskId!;
    const done = await settled(id);
    assert.equal(done.State, 'cancelled');
    assert.match(done.StatusMessage!, /import size \d+ does not match Image\.Bytes/);
    const wrongFormat = await staged('raw', 'RAW');
    const id2 = (await ec2.send(new ImportInstanceCommand(importInput(wrongFormat, 'VHD')))).ConversionTask!
      .ConversionTaskId!;
    assert.match((await settled(id2)).StatusMessage!, /file-format RAW does not match the requested format VHD/);
  });

  test('a task waits while its manifest is unreadable (missing or tampered URL) and converts once it can read it', async () => {
    const stage = await staged('raw', 'RAW');
    const tampered = stage.manifestUrl.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`
    );
    const bad = (await ec2.send(new ImportInstanceCommand(importInput({ ...stage, manifestUrl: tampered }, 'RAW'))))
      .ConversionTask!.ConversionTaskId!;
    await new Promise((r) => setTimeout(r, 600));
    const waiting = await task(bad);
    assert.deepEqual([waiting.State, waiting.StatusMessage], ['active', 'Pending']);
    await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: bad }));
    // The old tools' order: ImportInstance first, upload after. EC2 waits for the manifest.
    const early = await getSignedUrl(
      s3.client,
      new GetObjectCommand({ Bucket: s3.bucket, Key: 'conformance/late/manifest.xml' }),
      { expiresIn: 3600 }
    );
    const late = (
      await ec2.send(new ImportInstanceCommand(importInput({ size: stage.size, manifestUrl: early }, 'RAW')))
    ).ConversionTask!.ConversionTaskId!;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await task(late)).StatusMessage, 'Pending');
    const body = await (await fetch(stage.manifestUrl)).text();
    await fetch(
      await getSignedUrl(
        s3.client,
        new (await import('@aws-sdk/client-s3')).PutObjectCommand({
          Bucket: s3.bucket,
          Key: 'conformance/late/manifest.xml',
        })
      ),
      { method: 'PUT', body }
    );
    assert.equal((await settled(late)).State, 'completed');
  });

  test('cancel: active → cancelling → cancelled, artifacts removed; a completed task cannot be cancelled', async () => {
    sim.configure({ speed: { conversionBytesPerSecond: 1024 * 1024, cancelSeconds: 0.5 } });
    try {
      const stage = await staged('raw', 'RAW');
      const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, 'RAW')))).ConversionTask!
        .ConversionTaskId!;
      await until(
        () => task(id),
        (t) => /Progress/.test(t.StatusMessage ?? '')
      );
      await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id, ReasonMessage: 'test' }));
      assert.equal((await task(id)).State, 'cancelling');
      const done = await settled(id);
      assert.equal(done.State, 'cancelled');
      assert.equal(
        sim.model.state.instances.some((i) => i.instanceId === done.ImportInstance?.InstanceId),
        false
      );
    } finally {
      sim.configure(FAST);
    }
    const stage = await staged('raw', 'RAW');
    const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, 'RAW')))).ConversionTask!.ConversionTaskId!;
    assert.equal((await settled(id)).State, 'completed');
    assert.equal(
      (await ec2Error(ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: id })))).name,
      'DeleteConversionTaskError'
    );
  });

  test('an upload not finished by the expiration time ends the task: "Task expired"', async () => {
    sim.configure({ limits: { expirySeconds: 0.5 } });
    try {
      const nowhere = await getSignedUrl(
        s3.client,
        new GetObjectCommand({ Bucket: s3.bucket, Key: 'conformance/never/manifest.xml' }),
        { expiresIn: 3600 }
      );
      const id = (
        await ec2.send(new ImportInstanceCommand(importInput({ size: 1024 * 1024, manifestUrl: nowhere }, 'RAW')))
      ).ConversionTask!.ConversionTaskId!;
      const done = await settled(id);
      assert.deepEqual([done.State, done.StatusMessage], ['cancelled', 'Task expired and automatically canceled']);
    } finally {
      sim.configure({ limits: { expirySeconds: 7 * 24 * 3600 } });
    }
  });

  test('the failure marker fails the conversion at 50% with its message', async () => {
    sim.configure({ speed: { conversionBytesPerSecond: 8 * 1024 * 1024 } });
    try {
      const stage = await staged('raw', 'RAW', {
        marker: 'VMCONVOY_SIM_FAIL=ClientError: No bootable partition found',
      });
      const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, 'RAW')))).ConversionTask!
        .ConversionTaskId!;
      const done = await settled(id);
      assert.deepEqual([done.State, done.StatusMessage], ['cancelled', 'ClientError: No bootable partition found']);
    } finally {
      sim.configure(FAST);
    }
  });
});

describe('limits and faults', () => {
  test('the mutating token bucket throttles with RequestLimitExceeded (503); describes have their own bucket', async () => {
    sim.configure({ limits: { mutatingBurst: 2, mutatingRefillPerSecond: 0.01 } });
    try {
      const stage = await staged('raw', 'RAW');
      const id = (await ec2.send(new ImportInstanceCommand(importInput(stage, 'RAW')))).ConversionTask!
        .ConversionTaskId!;
      const instanceId = (await task(id)).ImportInstance!.InstanceId!;
      await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'a', Value: '1' }] }));
      const err = await ec2Error(
        ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'b', Value: '2' }] }))
      );
      assert.deepEqual([err.name, err.status, err.message], ['RequestLimitExceeded', 503, 'Request limit exceeded.']);
      await ec2.send(new DescribeConversionTasksCommand({}));
    } finally {
      sim.configure({ limits: { mutatingBurst: 50, mutatingRefillPerSecond: 5 } });
    }
  });

  test('more active conversions than the quota: ResourceLimitExceeded, not retried by the SDK', async () => {
    for (const t of sim.model.state.tasks)
      if (t.state === 'active') await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: t.id }));
    sim.configure({ limits: { maxActiveConversions: 1 }, speed: { conversionBytesPerSecond: 1024 * 1024 } });
    try {
      const a = await staged('raw', 'RAW');
      const b = await staged('raw', 'RAW');
      const first = (await ec2.send(new ImportInstanceCommand(importInput(a, 'RAW')))).ConversionTask!
        .ConversionTaskId!;
      const retrying = new EC2Client({ endpoint: sim.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 3 });
      const calls = sim.model.state.calls.ImportInstance ?? 0;
      const err = await ec2Error(retrying.send(new ImportInstanceCommand(importInput(b, 'RAW'))));
      assert.deepEqual([err.name, err.status], ['ResourceLimitExceeded', 400]);
      assert.equal((sim.model.state.calls.ImportInstance ?? 0) - calls, 1, 'the SDK did not retry it');
      const volumeTask = ec2.send(
        new ImportVolumeCommand({
          AvailabilityZone: 'us-east-1a',
          Image: { Format: 'RAW', Bytes: b.size, ImportManifestUrl: b.manifestUrl },
          Volume: { Size: 8 },
        })
      );
      assert.deepEqual(
        Object.values(await ec2Error(volumeTask)).slice(0, 1),
        ['ResourceLimitExceeded'],
        'ImportVolume counts against the same quota'
      );
      retrying.destroy();
      await ec2.send(new CancelConversionTaskCommand({ ConversionTaskId: first }));
    } finally {
      sim.configure({ limits: { maxActiveConversions: 5 }, speed: FAST.speed });
    }
  });

  test('injected 500s and lost responses look to the SDK as they would from EC2', async () => {
    sim.configure({ faults: { internalErrorRate: 1, actions: ['DescribeConversionTasks'] } });
    const err = await ec2Error(ec2.send(new DescribeConversionTasksCommand({})));
    assert.deepEqual([err.name, err.status], ['InternalError', 500]);
    sim.configure({ faults: { internalErrorRate: 0, lostImportResponseRate: 1, actions: [] } });
    const before = sim.model.state.tasks.length;
    const stage = await staged('raw', 'RAW');
    await assert.rejects(ec2.send(new ImportInstanceCommand(importInput(stage, 'RAW'))));
    assert.equal(sim.model.state.tasks.length, before + 1, 'the task was created although the answer was lost');
    sim.configure({ faults: { lostImportResponseRate: 0 } });
  });

  test('the control API refuses unknown config keys with a clear message', async () => {
    const res = await fetch(`${sim.url}/_sim/config`, { method: 'POST', body: JSON.stringify({ speed: { warp: 9 } }) });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /speed: Unrecognized key/);
  });
});

test('a restarted simulator continues a conversion where it was (state file)', async () => {
  const files = await tempDir('vmconvoy-sim-restart-');
  const proc = await startSim({
    stateFile: `${files.dir}/state.json`,
    // 16 MiB at 1 MiB/s: still converting after a restart that takes seconds on a loaded machine (at 4 MiB/s
    // the conversion had ended before the restarted simulator answered, with the load average at 30).
    config: { speed: { conversionBytesPerSecond: 1024 * 1024, stepSeconds: 0.1, pendingPollMs: 100 } },
  });
  try {
    const client = new EC2Client({ endpoint: proc.endpoint, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
    const stage = await staged('raw', 'RAW');
    const id = (await client.send(new ImportInstanceCommand(importInput(stage, 'RAW')))).ConversionTask!
      .ConversionTaskId!;
    const describe = async () =>
      (await client.send(new DescribeConversionTasksCommand({ ConversionTaskIds: [id] }))).ConversionTasks![0]!;
    await until(describe, (t) => /Progress: [1-9]/.test(t.StatusMessage ?? ''));
    await proc.restart();
    const after = await describe();
    assert.equal(after.State, 'active', 'still converting after the restart');
    const done = await until(describe, (t) => t.State !== 'active');
    assert.equal(done.State, 'completed');
    assert.equal((await proc.state()).tasks.filter((t) => t.id === id).length, 1);
    client.destroy();
  } finally {
    await proc.stop();
    await files.remove();
  }
});
