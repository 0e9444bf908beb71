/**
 * The online checks (issue 18) against the simulator's DescribeSubnets, DescribeSecurityGroups,
 * DescribeAvailabilityZones and ImportInstance DryRun, through the AWS SDK's EC2 client over HTTP: each
 * problem EC2's answers reveal is found, named by line and column, with one describe call per batch.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import type { EC2ServiceException } from '@aws-sdk/client-ec2';
import {
  DescribeAvailabilityZonesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
} from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../common/aws/clients';
import { createAwsClients, destroyAwsClients } from '../../common/aws/clients';
import type { VmconvoyConfig } from '../../common/config';
import { awsNetworkLimitsOf } from '../../common/config';
import type { VmSpec } from '../../common/contracts/migration';
import { vmSpecSchema } from '../../common/contracts/migration';
import type { OnlineRow } from '../../activities/network-checks';
import { checkNetwork } from '../../activities/network-checks';
import { dryRunRequest, importDryRun } from '../../activities/online-checks';
import { validateCommand } from '../../client/commands/validate';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import { makeImage } from '../helpers/images';
import { tempDir } from '../helpers/testbed';

const NETWORK = {
  zones: ['us-east-1a', 'us-east-1b'],
  vpcs: [
    { vpcId: 'vpc-0aaa', cidrBlock: '10.0.0.0/16', isDefault: true },
    { vpcId: 'vpc-0bbb', cidrBlock: '10.1.0.0/16' },
  ],
  subnets: [
    {
      subnetId: 'subnet-0a01',
      vpcId: 'vpc-0aaa',
      cidrBlock: '10.0.1.0/24',
      availabilityZone: 'us-east-1a',
      defaultForAz: true,
    },
    { subnetId: 'subnet-0b01', vpcId: 'vpc-0bbb', cidrBlock: '10.1.1.0/24', availabilityZone: 'us-east-1b' },
  ],
  securityGroups: [
    { groupId: 'sg-0aaa1', groupName: 'web', vpcId: 'vpc-0aaa' },
    { groupId: 'sg-0bbb1', groupName: 'web', vpcId: 'vpc-0bbb' },
    { groupId: 'sg-0bbb2', groupName: 'db', vpcId: 'vpc-0bbb' },
  ],
};

let sim: Simulator;
let clients: AwsClients;
let config: VmconvoyConfig;
let images: { dir: string; remove(): Promise<void> };

async function control(route: string, body?: unknown): Promise<Response> {
  return fetch(`${sim.url}/_sim/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

before(async () => {
  sim = await startSimulator({ config: { judge: { content: false } } });
  images = await tempDir('vmconvoy-online-');
  config = {
    aws: {
      region: 'us-east-1',
      ec2Endpoint: sim.url,
      // Only presigned (the DryRun's manifest URL): never connected to.
      s3Endpoint: 'http://127.0.0.1:9',
      bucket: 'staging',
      keyPrefix: 'vmconvoy/',
      accessKeyId: 'vmconvoy-local',
      secretAccessKey: 'vmconvoy-local-secret',
      maxAttempts: 1,
      ...awsNetworkLimitsOf({}),
    },
    temporal: { taskQueue: 'vmconvoy' },
    logLevel: 'info',
    logFormat: 'pretty',
    imageRoots: [],
    allowAnyPath: true,
    notifyReceivers: {},
  };
  clients = createAwsClients(config.aws);
});

beforeEach(async () => {
  await control('reset', {});
  sim.configure({ faults: { unauthorizedActions: [] } });
  assert.equal((await control('network', NETWORK)).status, 200);
});

after(async () => {
  destroyAwsClients(clients);
  await Promise.all([sim?.close(), images?.remove()]);
});

const spec = (name: string, extra: Partial<VmSpec> = {}): VmSpec =>
  vmSpecSchema.parse({ name, image: '/nonexistent.raw', architecture: 'x86_64', instanceType: 't2.medium', ...extra });

const awsCode = async (p: Promise<unknown>): Promise<[string, string]> => {
  const err = (await p.then(
    () => assert.fail('EC2 should have refused'),
    (e: unknown) => e
  )) as EC2ServiceException;
  return [err.name, err.message];
};

test('the simulator answers the three describe calls as EC2 does, errors included', async () => {
  const subnets = await clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0b01'] }));
  assert.deepEqual(
    subnets.Subnets?.map((s) => [s.SubnetId, s.VpcId, s.CidrBlock, s.AvailabilityZone, s.AvailableIpAddressCount]),
    [['subnet-0b01', 'vpc-0bbb', '10.1.1.0/24', 'us-east-1b', 251]]
  );
  assert.deepEqual(await awsCode(clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0dead'] }))), [
    'InvalidSubnetID.NotFound',
    "The subnet ID 'subnet-0dead' does not exist",
  ]);
  // A filter that matches nothing is an empty answer, not an error.
  const none = await clients.ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'subnet-id', Values: ['subnet-0dead'] }] })
  );
  assert.deepEqual(none.Subnets ?? [], []);

  assert.deepEqual(await awsCode(clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-0ffff'] }))), [
    'InvalidGroup.NotFound',
    "The security group 'sg-0ffff' does not exist",
  ]);
  // GroupName.N looks in the default VPC only: `db` lives in vpc-0bbb.
  assert.deepEqual(await awsCode(clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['db'] }))), [
    'InvalidGroup.NotFound',
    "The security group 'db' does not exist in default VPC 'vpc-0aaa'",
  ]);
  const web = await clients.ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['web'] }] })
  );
  assert.deepEqual(
    web.SecurityGroups?.map((g) => [g.GroupId, g.VpcId]),
    [
      ['sg-0aaa1', 'vpc-0aaa'],
      ['sg-0bbb1', 'vpc-0bbb'],
    ]
  );

  const zones = await clients.ec2.send(new DescribeAvailabilityZonesCommand({}));
  assert.deepEqual(
    zones.AvailabilityZones?.map((z) => [z.ZoneName, z.State, z.ZoneId]),
    [
      ['us-east-1a', 'available', 'use1-az1'],
      ['us-east-1b', 'available', 'use1-az2'],
    ]
  );
  assert.deepEqual(
    await awsCode(clients.ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['us-east-1z'] }))),
    ['InvalidParameterValue', 'Invalid availability zone: [us-east-1z]']
  );
});

test('a network EC2 could never show is refused at /_sim/network, and reset restores the default network', async () => {
  const bad = await control('network', { subnets: [{ ...NETWORK.subnets[0], cidrBlock: '192.168.0.0/24' }] });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /not inside vpc-0aaa's 10\.0\.0\.0\/16/);
  await control('reset', {});
  const network = (await (await control('network')).json()) as typeof NETWORK;
  assert.deepEqual(network.zones, ['us-east-1a', 'us-east-1b', 'us-east-1c']);
  assert.ok(
    network.subnets.some((s) => s.subnetId === 'subnet-0a1b2c3d'),
    "the examples' subnet is there by default"
  );
});

test('each network problem is found, on its line and column, with one describe call of each kind', async () => {
  const rows: OnlineRow[] = [
    {
      line: 2,
      spec: spec('good', {
        subnetId: 'subnet-0b01',
        availabilityZone: 'us-east-1b',
        privateIp: '10.1.1.10',
        securityGroups: ['sg-0bbb1', 'db'],
      }),
    },
    { line: 3, spec: spec('no-subnet', { subnetId: 'subnet-0dead' }) },
    { line: 4, spec: spec('zone-disagrees', { subnetId: 'subnet-0b01', availabilityZone: 'us-east-1a' }) },
    { line: 5, spec: spec('no-group', { subnetId: 'subnet-0b01', securityGroups: ['sg-0ffff'] }) },
    { line: 6, spec: spec('group-other-vpc', { subnetId: 'subnet-0b01', securityGroups: ['sg-0aaa1'] }) },
    { line: 7, spec: spec('ip-outside', { subnetId: 'subnet-0b01', privateIp: '10.2.0.5' }) },
    { line: 8, spec: spec('ip-first-four', { subnetId: 'subnet-0b01', privateIp: '10.1.1.3' }) },
    { line: 9, spec: spec('ip-last', { subnetId: 'subnet-0b01', privateIp: '10.1.1.255' }) },
    { line: 10, spec: spec('no-zone', { availabilityZone: 'us-east-1z' }) },
    { line: 11, spec: spec('name-not-in-vpc', { subnetId: 'subnet-0b01', securityGroups: ['ssh'] }) },
    // No subnet: the zone's default subnet (10.0.1.0/24 in vpc-0aaa) decides.
    {
      line: 12,
      spec: spec('default-subnet', { availabilityZone: 'us-east-1a', privateIp: '10.0.1.0', securityGroups: ['web'] }),
    },
  ];
  const problems = await checkNetwork(clients.ec2, 'us-east-1', rows);
  const at = (line: number) => problems.filter((p) => p.line === line).map((p) => `${p.column}: ${p.message}`);
  assert.deepEqual(at(2), [], 'a row EC2 agrees with has no problem');
  assert.match(at(3).join(), /^subnet_id: subnet subnet-0dead does not exist in us-east-1/);
  assert.match(
    at(4).join(),
    /^availability_zone: subnet subnet-0b01 is in us-east-1b, not us-east-1a: set availability_zone to us-east-1b/
  );
  assert.match(at(5).join(), /^security_groups: security group sg-0ffff does not exist/);
  assert.match(
    at(6).join(),
    /^security_groups: security group sg-0aaa1 is in vpc-0aaa, but subnet subnet-0b01 is in vpc-0bbb/
  );
  assert.match(
    at(7).join(),
    /^private_ip: private IP 10\.2\.0\.5 is outside subnet subnet-0b01 \(10\.1\.1\.0\/24\): use an address in 10\.1\.1\.4-10\.1\.1\.254/
  );
  assert.match(
    at(8).join(),
    /^private_ip: private IP 10\.1\.1\.3 is one of the first four addresses of 10\.1\.1\.0\/24/
  );
  assert.match(at(9).join(), /^private_ip: private IP 10\.1\.1\.255 is the last address of 10\.1\.1\.0\/24/);
  assert.match(
    at(10).join(),
    /^availability_zone: availability zone us-east-1z does not exist in us-east-1 \(zones: us-east-1a, us-east-1b\)/
  );
  assert.match(at(11).join(), /^security_groups: no security group named "ssh" in vpc-0bbb/);
  assert.deepEqual(at(12), [
    'private_ip: private IP 10.0.1.0 is one of the first four addresses of 10.0.1.0/24, which AWS reserves in every subnet: use an address in 10.0.1.4-10.0.1.254',
  ]);
  assert.equal(problems.length, 10, JSON.stringify(problems, null, 1));
  // One call per kind for the whole batch (groups: one by ID, one by name); default subnets: one more.
  const calls = sim.model.state.calls;
  assert.deepEqual([calls.DescribeAvailabilityZones, calls.DescribeSubnets, calls.DescribeSecurityGroups], [1, 2, 2]);
});

test('ImportInstance DryRun: DryRunOperation passes and creates nothing; a refused parameter or permission is a problem', async () => {
  const input = (extra: Partial<VmSpec> = {}) => ({
    batch: 'b',
    vm: 'vm1',
    spec: spec('vm1', extra),
    format: 'RAW' as const,
    imageBytes: 8 * 1024 ** 3,
    volumeSizeGib: 8,
  });
  const deps = { presigner: clients.presigner, bucket: 'staging', keyPrefix: 'vmconvoy/' };
  assert.equal(await importDryRun(clients.ec2, 'us-east-1', await dryRunRequest(deps, input()), 4), undefined);
  assert.equal(sim.model.state.tasks.length, 0, 'a DryRun creates no conversion task');
  assert.equal(sim.model.state.calls.ImportInstance, 1);

  const linux = await importDryRun(
    clients.ec2,
    'us-east-1',
    await dryRunRequest(deps, input({ instanceType: 'm5.large' })),
    5
  );
  assert.equal(linux?.line, 5);
  assert.equal(linux?.column, 'instance_type');
  assert.match(linux?.message ?? '', /InvalidParameterValue: Linux is not supported on the requested instance/);

  sim.configure({ faults: { unauthorizedActions: ['ImportInstance'] } });
  const denied = await importDryRun(clients.ec2, 'us-east-1', await dryRunRequest(deps, input()), 6);
  assert.match(
    denied?.message ?? '',
    /ImportInstance refused in us-east-1 \(UnauthorizedOperation: .*\): grant .*ec2:ImportInstance/
  );
  assert.equal(sim.model.state.tasks.length, 0);
});

test('validate --online reports what AWS says, by line and column; a valid inventory passes', async () => {
  const image = await makeImage(images.dir, 'disk.raw', 'raw', { virtualMiB: 8, randomMiB: 1 });
  const csv = path.join(images.dir, 'inventory.csv');
  const header = 'name,image,format,architecture,instance_type,subnet_id,private_ip,security_groups,inspection';
  await writeFile(csv, `${header}\nweb-01,${image},RAW,x86_64,t2.medium,subnet-0b01,10.1.1.20,db,skip\n`);
  assert.equal((await validateCommand(csv, { online: config })).ok, true);
  await writeFile(
    csv,
    `${header}\nweb-01,${image},RAW,x86_64,t2.medium,subnet-0b01,10.1.1.20,db,skip\nweb-02,${image},RAW,x86_64,t2.medium,subnet-0b01,10.1.1.1,db,skip\n`
  );
  const result = await validateCommand(csv, { online: config });
  assert.equal(result.ok, false);
  assert.deepEqual(!result.ok && result.errors.map((e) => [e.line, e.column]), [[3, 'private_ip']]);
  // Offline, the same file is fine: nothing was asked of AWS.
  const calls = sim.model.state.calls.DescribeSubnets;
  assert.equal((await validateCommand(csv)).ok, true);
  assert.equal(sim.model.state.calls.DescribeSubnets, calls);
});
