/**
 * The EC2 activities against a canned EC2 Query endpoint plugged in as the SDK's request handler: what
 * ImportInstance really sends, adoption of an existing task, DryRun, quota and retry behaviour. (The
 * simulator tests in test/integration/activities-ec2.test.ts cover the full lifecycle.)
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createAwsClients } from '../../common/aws/clients';
import { cleanupVm } from '../../activities/cleanup';
import { listingWaitDeadline, sentUrlId } from '../../activities/import-idempotency';
import { importInstance } from '../../activities/import-instance';
import { instanceMismatches } from '../../activities/validate';
import type { ImportInstanceInput } from '../../common/contracts/activity-io';
import { vmSpecSchema } from '../../common/contracts/migration';
import { tempDir } from '../helpers/testbed';

type Params = Record<string, string>;
type Reply = { status?: number; xml: string };

/** Answers EC2 Query requests from per-Action functions and records every request's parameters. */
class CannedEc2 {
  calls: Params[] = [];
  replies: Record<string, (p: Params) => Reply> = {};
  readonly handler = {
    handle: (request: { body?: unknown }) => {
      const params = Object.fromEntries(new URLSearchParams(typeof request.body === 'string' ? request.body : ''));
      this.calls.push(params);
      const reply = this.replies[params.Action ?? '']?.(params) ?? ec2Error('InvalidAction', 'not canned', 400);
      return Promise.resolve({
        response: {
          statusCode: reply.status ?? 200,
          headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': 'req-1' },
          body: Readable.from([Buffer.from(reply.xml)]),
        },
      });
    },
  };
  client(maxAttempts = 3): EC2Client {
    return new EC2Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 's' },
      requestHandler: this.handler,
      maxAttempts,
    });
  }
  actions(): string[] {
    return this.calls.map((c) => c.Action ?? '');
  }
}

function ec2Error(code: string, message: string, status: number): Reply {
  return {
    status,
    xml: `<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>r</RequestID></Response>`,
  };
}

function taskXml(id: string, state: string, manifestUrl: string, extra = ''): string {
  return `<item><conversionTaskId>${id}</conversionTaskId><state>${state}</state><statusMessage>${extra}</statusMessage>
    <importInstance><instanceId>i-${id.slice(-4)}</instanceId><volumes><item><bytesConverted>0</bytesConverted>
    <image><format>VMDK</format><size>100</size><importManifestUrl>${manifestUrl.replace(/&/g, '&amp;')}</importManifestUrl></image>
    <volume><id>vol-${id.slice(-4)}</id><size>8</size></volume></item></volumes></importInstance></item>`;
}

/** The staging bucket's keys, for the import marker (Head/Get/PutObject) and cleanup's listing. */
class FakeS3 {
  keys = new Set<string>();
  /** Bodies of the objects PUT (a key added by hand reads as empty, like an older vmconvoy's marker). */
  bodies = new Map<string, string>();
  readonly client = {
    send: (command: { constructor: { name: string }; input: { Key?: string; Body?: unknown } }) => {
      const name = command.constructor.name;
      const key = command.input.Key ?? '';
      const notFound = () =>
        Promise.reject(Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));
      if (name === 'HeadObjectCommand') return this.keys.has(key) ? Promise.resolve({ ContentLength: 0 }) : notFound();
      if (name === 'GetObjectCommand') {
        const body = this.bodies.get(key) ?? '';
        return this.keys.has(key)
          ? Promise.resolve({ Body: { transformToString: () => Promise.resolve(body) } })
          : notFound();
      }
      if (name === 'PutObjectCommand') {
        this.keys.add(key);
        this.bodies.set(key, typeof command.input.Body === 'string' ? command.input.Body : '');
        return Promise.resolve({});
      }
      if (name === 'ListObjectsV2Command')
        return Promise.resolve({ Contents: [...this.keys].map((Key) => ({ Key })), IsTruncated: false });
      if (name === 'DeleteObjectsCommand') {
        this.keys.clear();
        return Promise.resolve({ Errors: [] });
      }
      return Promise.reject(new Error(`FakeS3: ${name} not canned`));
    },
  } as unknown as Parameters<typeof importInstance>[0]['s3'];
}

const describeReply = (...tasks: string[]): Reply => ({
  xml: `<DescribeConversionTasksResponse><requestId>r</requestId><conversionTasks>${tasks.join('')}</conversionTasks></DescribeConversionTasksResponse>`,
});
const importReply = (id: string): Reply => ({
  xml: `<ImportInstanceResponse><requestId>r</requestId><conversionTask>${taskXml(id, 'active', 'http://x/y').replace(/^<item>|<\/item>$/g, '')}</conversionTask></ImportInstanceResponse>`,
});

describe('EC2 import activities (canned EC2)', () => {
  let tmp: { dir: string; remove(): Promise<void> };
  let fake: CannedEc2;
  let s3: FakeS3;
  const s3Side = createAwsClients({
    region: 'us-east-1',
    bucket: 'stage',
    keyPrefix: 'vmconvoy/',
    accessKeyId: 'a',
    secretAccessKey: 's',
    s3Endpoint: 'http://127.0.0.1:9',
    maxAttempts: 1,
  });
  const manifestKey = 'vmconvoy/b1/vm1/manifest.xml';
  const markerKey = 'vmconvoy/b1/vm1/import-requested';

  before(async () => {
    tmp = await tempDir('vmconvoy-ec2-unit-');
  });
  after(() => tmp.remove());
  beforeEach(() => {
    fake = new CannedEc2();
    s3 = new FakeS3();
    fake.replies.CreateTags = () => ({
      xml: '<CreateTagsResponse><requestId>r</requestId><return>true</return></CreateTagsResponse>',
    });
  });

  const deps = () => ({
    ec2: fake.client(),
    ec2NoRetry: fake.client(1),
    presigner: s3Side.presigner,
    s3: s3.client,
    bucket: 'stage',
    keyPrefix: 'vmconvoy/',
  });

  function input(extra: Record<string, unknown> = {}, dryRun = false): ImportInstanceInput {
    const spec = vmSpecSchema.parse({
      name: 'vm1',
      image: '/img/vm1.vmdk',
      architecture: 'x86_64',
      instanceType: 'm3.medium',
      availabilityZone: 'us-east-1a',
      subnetId: 'subnet-1',
      privateIp: '10.0.0.5',
      securityGroups: ['web', 'sg-0123'],
      monitoring: true,
      shutdownBehavior: 'terminate',
      ...extra,
    });
    return {
      batch: 'b1',
      vm: 'vm1',
      spec,
      format: 'VMDK',
      imageBytes: 12345,
      volumeSizeGib: 9,
      manifestKey,
      validUntil: new Date(Date.now() + 3600_000).toISOString(),
      dryRun,
    };
  }

  it('sends every launch setting, the manifest URL and base64 user data in one ImportInstance without retries', async () => {
    const userData = path.join(tmp.dir, 'ud.sh');
    await writeFile(userData, '#!/bin/sh\necho hi\n');
    fake.replies.ImportInstance = () => importReply('import-i-new00001');
    const result = await importInstance(deps(), input({ userDataFile: userData, description: 'db & web' }));
    assert.deepEqual(result, {
      conversionTaskId: 'import-i-new00001',
      instanceId: 'i-0001',
      volumeId: 'vol-0001',
      adopted: false,
    });
    // A first import (no marker): no look-up through the account's task list, and the marker written first;
    // the new instance is tagged as this VM's at once.
    assert.deepEqual(fake.actions(), ['ImportInstance', 'CreateTags']);
    const tags = fake.calls[1]!;
    assert.equal(tags['ResourceId.1'], 'i-0001');
    const tagged = Object.fromEntries(
      Object.keys(tags)
        .filter((k) => /^Tag\.\d+\.Key$/.test(k))
        .map((k) => [tags[k], tags[k.replace('Key', 'Value')]])
    );
    assert.equal(tagged['vmconvoy:batch'], 'b1');
    assert.equal(tagged['vmconvoy:vm'], 'vm1');
    const record = JSON.parse(s3.bodies.get('vmconvoy/b1/vm1/resources.json') ?? '{}') as {
      imports?: Array<{ conversionTaskId: string; instanceId?: string }>;
    };
    assert.deepEqual(
      record.imports?.map((i) => [i.conversionTaskId, i.instanceId]),
      [['import-i-new00001', 'i-0001']],
      'what the import created is recorded beside the manifest'
    );
    assert.ok(s3.keys.has(markerKey), 'the import marker exists');
    const p = fake.calls[0]!;
    assert.equal(p.Platform, 'Linux');
    assert.equal(p.Description, 'db & web');
    assert.equal(p['LaunchSpecification.Architecture'], 'x86_64');
    assert.equal(p['LaunchSpecification.InstanceType'], 'm3.medium');
    assert.equal(p['LaunchSpecification.Placement.AvailabilityZone'], 'us-east-1a');
    assert.equal(p['LaunchSpecification.SubnetId'], 'subnet-1');
    assert.equal(p['LaunchSpecification.PrivateIpAddress'], '10.0.0.5');
    assert.equal(p['LaunchSpecification.GroupName.1'], 'web');
    assert.equal(p['LaunchSpecification.GroupId.1'], 'sg-0123');
    assert.equal(p['LaunchSpecification.Monitoring'], 'true');
    assert.equal(p['LaunchSpecification.InstanceInitiatedShutdownBehavior'], 'terminate');
    assert.equal(Buffer.from(p['LaunchSpecification.UserData.Data']!, 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.equal(p['DiskImage.1.Image.Format'], 'VMDK');
    assert.equal(p['DiskImage.1.Image.Bytes'], '12345');
    assert.equal(p['DiskImage.1.Volume.Size'], '9');
    const url = new URL(p['DiskImage.1.Image.ImportManifestUrl']!);
    assert.equal(url.pathname, `/stage/${manifestKey}`);
    assert.ok(url.searchParams.get('X-Amz-Signature'));
    assert.equal(p.DryRun, undefined);
  });

  it('after a marker, looks for its task first and does not mistake another VM’s for it', async () => {
    s3.keys.add(markerKey);
    fake.replies.DescribeConversionTasks = () =>
      describeReply(
        taskXml('import-i-other001', 'active', 'http://127.0.0.1:9/stage/vmconvoy/b1/vm10/manifest.xml?X=1')
      );
    fake.replies.ImportInstance = () => importReply('import-i-new00001');
    const result = await importInstance(deps(), input());
    assert.equal(result.adopted, false);
    assert.deepEqual(
      fake.actions(),
      ['DescribeConversionTasks', 'ImportInstance', 'CreateTags'],
      "vm10's task is not mistaken for vm1's"
    );
  });

  it('adopts an active or completed task for the same manifest instead of creating another', async () => {
    s3.keys.add(markerKey);
    const url = `http://127.0.0.1:9/stage/${manifestKey}?X-Amz-Signature=abc&X-Amz-Expires=10`;
    fake.replies.DescribeConversionTasks = () =>
      describeReply(taskXml('import-i-dead0001', 'cancelled', url), taskXml('import-i-live0002', 'active', url));
    const result = await importInstance(deps(), input());
    assert.deepEqual(result, {
      conversionTaskId: 'import-i-live0002',
      instanceId: 'i-0002',
      volumeId: 'vol-0002',
      adopted: true,
    });
    assert.deepEqual(fake.actions(), ['DescribeConversionTasks', 'CreateTags']);

    fake.calls = [];
    const hosted = `https://stage.s3.us-east-1.amazonaws.com/${manifestKey}?X-Amz-Signature=abc`;
    fake.replies.DescribeConversionTasks = () => describeReply(taskXml('import-i-done0003', 'completed', hosted));
    assert.equal(
      (await importInstance(deps(), input())).conversionTaskId,
      'import-i-done0003',
      'virtual-hosted URLs match too'
    );
  });

  it('after a lost answer, waits for EC2 to list the task of a recent send before it sends again', async () => {
    const url = `http://127.0.0.1:9/stage/${manifestKey}?X-Amz-Signature=sig-of-the-lost-send`;
    // The marker of a send made a moment ago, whose answer was lost: EC2 lists its task only on the 3rd look.
    s3.keys.add(markerKey);
    s3.bodies.set(markerKey, JSON.stringify({ sent: [sentUrlId(url)], sentAt: Date.now() }));
    let looks = 0;
    fake.replies.DescribeConversionTasks = () =>
      ++looks < 3 ? describeReply() : describeReply(taskXml('import-i-late0001', 'active', url));
    fake.replies.ImportInstance = () => importReply('import-i-dupl0002');
    const result = await importInstance(deps(), { ...input(), listingWaitSeconds: 30 });
    assert.equal(result.conversionTaskId, 'import-i-late0001');
    assert.equal(result.adopted, true);
    assert.equal(looks, 3);
    assert.ok(!fake.actions().includes('ImportInstance'), 'no second task');
  });

  it('sends again once the listing wait after the last send is over, and not before', async () => {
    const url = `http://127.0.0.1:9/stage/${manifestKey}?X-Amz-Signature=sig-that-created-nothing`;
    s3.keys.add(markerKey);
    const sentAt = Date.now();
    s3.bodies.set(markerKey, JSON.stringify({ sent: [sentUrlId(url)], sentAt }));
    fake.replies.DescribeConversionTasks = () => describeReply();
    let sentAfterMs = -1;
    fake.replies.ImportInstance = () => {
      sentAfterMs = Date.now() - sentAt;
      return importReply('import-i-new00001');
    };
    const result = await importInstance(deps(), { ...input(), listingWaitSeconds: 3 });
    assert.equal(result.adopted, false);
    assert.ok(sentAfterMs >= 3000, `sent ${sentAfterMs} ms after the earlier send`);
    assert.ok(fake.actions().filter((a) => a === 'DescribeConversionTasks').length >= 2, 'looked more than once');
  });

  it('does not wait when the marker is old or its send is listed already', async () => {
    const url = `http://127.0.0.1:9/stage/${manifestKey}?X-Amz-Signature=sig-of-a-failed-task`;
    s3.keys.add(markerKey);
    // Another execution's send, listed as a failed task: its outcome is known, no reason to wait.
    s3.bodies.set(markerKey, JSON.stringify({ execution: 'x', sent: [sentUrlId(url)], sentAt: Date.now() }));
    fake.replies.DescribeConversionTasks = () => describeReply(taskXml('import-i-dead0001', 'cancelled', url));
    fake.replies.ImportInstance = () => importReply('import-i-new00001');
    const started = Date.now();
    await importInstance(deps(), { ...input(), listingWaitSeconds: 60 });
    assert.ok(Date.now() - started < 2000, 'no wait');
    assert.deepEqual(listingWaitDeadline({ sent: ['a'] }, 60), 0, 'a marker of an earlier version sets no wait');
    assert.equal(listingWaitDeadline({ sent: ['a'], sentAt: 1000 }, undefined), 1000 + 90_000, 'default 90 s');
  });

  it('treats DryRunOperation as success and creates nothing', async () => {
    fake.replies.ImportInstance = (p) =>
      p.DryRun === 'true'
        ? ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412)
        : importReply('import-i-x');
    const result = await importInstance(deps(), input({}, true));
    assert.deepEqual(result, { conversionTaskId: '', adopted: false });
    assert.deepEqual(fake.actions(), ['ImportInstance']);
  });

  it('ResourceLimitExceeded → ConversionQuotaExceeded, left to the workflow to wait out', async () => {
    fake.replies.DescribeConversionTasks = () => describeReply();
    fake.replies.ImportInstance = () =>
      ec2Error('ResourceLimitExceeded', 'You have reached the limit of active conversion tasks.', 400);
    await assert.rejects(importInstance(deps(), input()), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'ConversionQuotaExceeded');
      assert.equal(err.nonRetryable, true);
      return true;
    });
    // A refusal created nothing: the marker forgets that send, so the import after the quota wait sends at
    // once instead of waiting for EC2 to list a task that does not exist.
    const marker = JSON.parse(s3.bodies.get(markerKey) ?? '{}') as { sent?: string[]; sentAt?: number };
    assert.deepEqual(marker.sent, []);
    assert.equal(marker.sentAt, undefined);
    fake.replies.ImportInstance = () => importReply('import-i-new00001');
    const started = Date.now();
    assert.equal((await importInstance(deps(), input())).conversionTaskId, 'import-i-new00001');
    assert.ok(Date.now() - started < 1500, 'no listing wait after a refusal');
  });

  it('never lets the SDK retry ImportInstance itself (a retry could create a duplicate task)', async () => {
    fake.replies.DescribeConversionTasks = () => describeReply();
    fake.replies.ImportInstance = () => ec2Error('InternalError', 'boom', 500);
    await assert.rejects(
      importInstance(deps(), input()),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'AwsUnavailable' && !err.nonRetryable
    );
    assert.equal(fake.actions().filter((a) => a === 'ImportInstance').length, 1);
  });

  it('keeps AWS’s message for an invalid parameter and does not retry', async () => {
    fake.replies.DescribeConversionTasks = () => describeReply();
    fake.replies.ImportInstance = () =>
      ec2Error('InvalidParameterValue', 'Value (m9.huge) for parameter instanceType is invalid.', 400);
    await assert.rejects(
      importInstance(deps(), input({ instanceType: 'm9.huge' })),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'AwsInvalidParameter' &&
        err.nonRetryable &&
        /m9\.huge/.test(err.message)
    );
  });

  it('cleanup tolerates a task that can no longer be cancelled', async () => {
    fake.replies.DescribeConversionTasks = () => describeReply(taskXml('import-i-live0002', 'active', 'http://x/y'));
    fake.replies.CancelConversionTask = () => ec2Error('DeleteConversionTaskError', 'cannot be cancelled now', 400);
    const result = await cleanupVm(
      { ec2: fake.client(), s3: s3.client, bucket: 'stage', keyPrefix: 'vmconvoy/' },
      { batch: 'b1', vm: 'vm1', cancelConversionTaskId: 'import-i-live0002' }
    );
    assert.deepEqual(result, { deletedObjects: 0, cancelledTask: false });
    assert.deepEqual(fake.actions(), ['DescribeConversionTasks', 'CancelConversionTask']);
  });

  it('cleanup after a lost ImportInstance answer finds the task by its manifest and cancels it', async () => {
    s3.keys.add(markerKey);
    const url = `http://127.0.0.1:9/stage/${manifestKey}?X-Amz-Signature=abc`;
    fake.replies.DescribeConversionTasks = () => describeReply(taskXml('import-i-lost0001', 'active', url));
    fake.replies.CancelConversionTask = () => ({
      xml: '<CancelConversionTaskResponse><requestId>r</requestId><return>true</return></CancelConversionTaskResponse>',
    });
    const result = await cleanupVm(
      { ec2: fake.client(), s3: s3.client, bucket: 'stage', keyPrefix: 'vmconvoy/' },
      { batch: 'b1', vm: 'vm1', reason: 'cancelled by the operator' }
    );
    assert.deepEqual(result, { deletedObjects: 1, cancelledTask: true, stoppedInstances: [], remainingInstances: [] });
    assert.deepEqual(fake.actions(), ['DescribeConversionTasks', 'DescribeConversionTasks', 'CancelConversionTask']);
    assert.equal(fake.calls[2]!.ConversionTaskId, 'import-i-lost0001');
    assert.equal(s3.keys.size, 0, 'the marker is deleted with the VM’s objects');

    // A completed VM's cleanup (no reason) never lists the account's tasks.
    fake.calls = [];
    s3.keys.add(markerKey);
    await cleanupVm(
      { ec2: fake.client(), s3: s3.client, bucket: 'stage', keyPrefix: 'vmconvoy/' },
      { batch: 'b1', vm: 'vm1' }
    );
    assert.deepEqual(fake.actions(), []);
  });
});

describe('instance validation rules', () => {
  const spec = vmSpecSchema.parse({
    name: 'vm1',
    image: '/i',
    architecture: 'x86_64',
    instanceType: 'm3.medium',
    platform: 'Windows',
    subnetId: 'subnet-1',
  });
  const good = {
    State: { Name: 'stopped' as const },
    Architecture: 'x86_64' as const,
    InstanceType: 'm3.medium' as const,
    Platform: 'Windows' as const,
    SubnetId: 'subnet-1',
    BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeId: 'vol-1' } }],
  };
  it('accepts a matching instance, whatever the case of its platform', () => {
    assert.deepEqual(instanceMismatches(good, spec), []);
    assert.deepEqual(instanceMismatches({ ...good, Platform: 'windows' as 'Windows' }, spec), []);
  });
  it('names every difference', () => {
    const problems = instanceMismatches(
      {
        ...good,
        State: { Name: 'running' },
        Platform: undefined,
        SubnetId: 'subnet-2',
        BlockDeviceMappings: [...good.BlockDeviceMappings, { DeviceName: '/dev/sdb', Ebs: { VolumeId: 'vol-2' } }],
      },
      spec
    );
    assert.deepEqual(problems, [
      'state is running, expected stopped',
      'platform is linux, expected windows',
      'subnet is subnet-2, expected subnet-1',
      'expected exactly one volume, at /dev/sda1; found /dev/sda1=vol-1, /dev/sdb=vol-2',
    ]);
  });
});
