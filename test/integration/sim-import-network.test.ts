/**
 * The simulator's ImportInstance checks its launch network as EC2 does (sim/README.md, "ImportInstance's
 * network"): an unknown subnet is InvalidSubnetID.NotFound, an unknown group ID or a group of another VPC
 * is InvalidGroup.NotFound, a group name is looked up in the subnet's VPC (the default VPC without a
 * subnet). Asked with the real AWS SDK over HTTP, DryRun or not; a refused call creates no task.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { EC2ServiceException, ImportInstanceCommandInput } from '@aws-sdk/client-ec2';
import { EC2Client, ImportInstanceCommand } from '@aws-sdk/client-ec2';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';

const NETWORK = {
  zones: ['us-east-1a', 'us-east-1b'],
  vpcs: [
    { vpcId: 'vpc-0aaa', cidrBlock: '10.0.0.0/16', isDefault: true },
    { vpcId: 'vpc-0bbb', cidrBlock: '10.1.0.0/16' },
  ],
  subnets: [
    { subnetId: 'subnet-0a01', vpcId: 'vpc-0aaa', cidrBlock: '10.0.1.0/24', availabilityZone: 'us-east-1a' },
    { subnetId: 'subnet-0b01', vpcId: 'vpc-0bbb', cidrBlock: '10.1.1.0/24', availabilityZone: 'us-east-1b' },
  ],
  securityGroups: [
    { groupId: 'sg-0aaa1', groupName: 'web', vpcId: 'vpc-0aaa' },
    { groupId: 'sg-0bbb1', groupName: 'db', vpcId: 'vpc-0bbb' },
  ],
};

let sim: Simulator;
let ec2: EC2Client;

const control = (route: string, body?: unknown): Promise<Response> =>
  fetch(`${sim.url}/_sim/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

before(async () => {
  sim = await startSimulator({ config: { judge: { content: false } } });
  ec2 = new EC2Client({
    endpoint: sim.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' },
    maxAttempts: 1,
  });
});
beforeEach(async () => {
  await control('reset', {});
  assert.equal((await control('network', NETWORK)).status, 200);
});
after(async () => {
  ec2?.destroy();
  await sim?.close();
});

function request(
  launch: Partial<NonNullable<ImportInstanceCommandInput['LaunchSpecification']>>,
  dryRun: boolean
): ImportInstanceCommandInput {
  return {
    Platform: 'Linux' as 'Windows',
    DryRun: dryRun || undefined,
    LaunchSpecification: { Architecture: 'x86_64', InstanceType: 't2.medium', ...launch },
    // Never fetched: a refused call, or a DryRun, stops before the manifest is read.
    DiskImages: [
      {
        Image: { Format: 'RAW', Bytes: 1024 * 1024, ImportManifestUrl: 'http://127.0.0.1:9/manifest.xml' },
        Volume: { Size: 8 },
      },
    ],
  };
}

const answer = async (input: ImportInstanceCommandInput): Promise<[string, string]> => {
  const err = (await ec2.send(new ImportInstanceCommand(input)).then(
    () => assert.fail('expected EC2 to refuse'),
    (e: unknown) => e
  )) as EC2ServiceException;
  return [err.name, err.message];
};

const tasks = async (): Promise<number> =>
  ((await (await control('state')).json()) as { tasks: unknown[] }).tasks.length;

for (const dryRun of [false, true]) {
  const as = dryRun ? ' (DryRun)' : '';
  test(`an unknown subnet is InvalidSubnetID.NotFound${as}`, async () => {
    assert.deepEqual(await answer(request({ SubnetId: 'subnet-0dead' }, dryRun)), [
      'InvalidSubnetID.NotFound',
      "The subnet ID 'subnet-0dead' does not exist",
    ]);
    assert.equal(await tasks(), 0);
  });

  test(`an unknown group ID, or one of another VPC than the subnet's, is InvalidGroup.NotFound${as}`, async () => {
    assert.deepEqual(await answer(request({ GroupIds: ['sg-0ffff'] }, dryRun)), [
      'InvalidGroup.NotFound',
      "The security group 'sg-0ffff' does not exist",
    ]);
    assert.deepEqual(await answer(request({ SubnetId: 'subnet-0b01', GroupIds: ['sg-0aaa1'] }, dryRun)), [
      'InvalidGroup.NotFound',
      "The security group 'sg-0aaa1' does not exist in VPC 'vpc-0bbb'",
    ]);
    assert.equal(await tasks(), 0);
  });

  test(`a group name is looked up in the subnet's VPC, or the default VPC without a subnet${as}`, async () => {
    assert.deepEqual(await answer(request({ GroupNames: ['db'] }, dryRun)), [
      'InvalidGroup.NotFound',
      "The security group 'db' does not exist in default VPC 'vpc-0aaa'",
    ]);
    assert.deepEqual(await answer(request({ SubnetId: 'subnet-0b01', GroupNames: ['web'] }, dryRun)), [
      'InvalidGroup.NotFound',
      "The security group 'web' does not exist in VPC 'vpc-0bbb'",
    ]);
    assert.equal(await tasks(), 0);
  });
}

test('a subnet and groups that exist pass the check (DryRun answers DryRunOperation)', async () => {
  for (const launch of [
    { SubnetId: 'subnet-0b01', GroupIds: ['sg-0bbb1'], GroupNames: ['db'] },
    { SubnetId: 'subnet-0a01', GroupNames: ['web'] },
    { GroupIds: ['sg-0aaa1'], GroupNames: ['web'] },
  ])
    assert.deepEqual((await answer(request(launch, true)))[0], 'DryRunOperation', JSON.stringify(launch));
  assert.equal(await tasks(), 0);
});
