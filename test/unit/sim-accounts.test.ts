/**
 * The simulator's accounts and Regions (issue 20): STS GetCallerIdentity names the account of the key that
 * signed; conversion tasks belong to an account in a Region, which alone sees them and whose limit counts
 * only them; a Region the simulator does not serve is refused as before.
 */
import { DescribeConversionTasksCommand, EC2Client, ImportInstanceCommand } from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Simulator } from '../../sim/server';
import { startSimulator } from '../../sim/server';

const OWN = { accessKeyId: 'AKIDOWN', secretAccessKey: 'own-secret' };
const OTHER = { accessKeyId: 'AKIDOTHER', secretAccessKey: 'other-secret' };
let sim: Simulator;
const clients: Array<{ destroy(): void }> = [];

before(async () => {
  sim = await startSimulator({
    ...OWN,
    region: 'us-east-1',
    config: {
      limits: { maxActiveConversions: 1 },
      accounts: {
        defaultAccountId: '111111111111',
        keys: { [OTHER.accessKeyId]: { secretAccessKey: OTHER.secretAccessKey, accountId: '222222222222' } },
        regions: ['eu-west-1'],
      },
    },
  });
});
after(async () => {
  for (const c of clients) c.destroy();
  await sim.close();
});

function ec2(credentials: typeof OWN, region = 'us-east-1'): EC2Client {
  const client = new EC2Client({ endpoint: sim.url, region, credentials, maxAttempts: 1 });
  clients.push(client);
  return client;
}

/** An import whose manifest is never readable: the task stays active (it counts against the limit). */
const importOne = (client: EC2Client) =>
  client.send(
    new ImportInstanceCommand({
      Platform: 'Linux' as 'Windows', // the SDK's enum lists only Windows; EC2 and the simulator take Linux
      LaunchSpecification: { Architecture: 'x86_64', InstanceType: 't2.medium' },
      DiskImages: [
        {
          Image: { Format: 'RAW', Bytes: 1048576, ImportManifestUrl: 'http://127.0.0.1:9/nowhere/manifest.xml' },
          Volume: { Size: 1 },
        },
      ],
    })
  );

test('STS GetCallerIdentity answers the account of the signing key; an unknown key is InvalidClientTokenId', async () => {
  const ask = async (credentials: typeof OWN, region = 'us-east-1') => {
    const sts = new STSClient({ endpoint: sim.url, region, credentials, maxAttempts: 1 });
    clients.push(sts);
    return sts.send(new GetCallerIdentityCommand({}));
  };
  const own = await ask(OWN);
  assert.deepEqual([own.Account, own.UserId], ['111111111111', OWN.accessKeyId]);
  assert.equal((await ask(OTHER, 'eu-west-1')).Account, '222222222222');
  await assert.rejects(ask({ accessKeyId: 'AKIDNOBODY', secretAccessKey: 'x' }), { name: 'InvalidClientTokenId' });
  await assert.rejects(ask({ ...OTHER, secretAccessKey: 'wrong' }), { name: 'SignatureDoesNotMatch' });
});

test('the conversion limit counts per account and Region; each sees only its own tasks', async () => {
  const mine = await importOne(ec2(OWN));
  const myTask = mine.ConversionTask!.ConversionTaskId!;
  // The same account and Region: over its limit of 1.
  await assert.rejects(importOne(ec2(OWN)), { name: 'ResourceLimitExceeded' });
  // Another account in that Region, and the same account in another Region: limits of their own.
  const theirs = await importOne(ec2(OTHER));
  const elsewhere = await importOne(ec2(OWN, 'eu-west-1'));
  const listed = async (client: EC2Client) =>
    ((await client.send(new DescribeConversionTasksCommand({}))).ConversionTasks ?? []).map((t) => t.ConversionTaskId);
  assert.deepEqual(await listed(ec2(OWN)), [myTask]);
  assert.deepEqual(await listed(ec2(OTHER)), [theirs.ConversionTask!.ConversionTaskId]);
  assert.deepEqual(await listed(ec2(OWN, 'eu-west-1')), [elsewhere.ConversionTask!.ConversionTaskId]);
  // Another account's task by ID does not exist for this caller.
  await assert.rejects(ec2(OTHER).send(new DescribeConversionTasksCommand({ ConversionTaskIds: [myTask] })), {
    name: 'InvalidConversionTaskId',
  });
  // The control API shows every task with its owner.
  const owners = sim.model.state.tasks.map((t) => sim.model.ownerOf(t));
  assert.deepEqual(owners.map((o) => `${o.accountId}/${o.region}`).sort(), [
    '111111111111/eu-west-1',
    '111111111111/us-east-1',
    '222222222222/us-east-1',
  ]);
});

test('a Region the simulator does not serve is refused (AuthFailure)', async () => {
  await assert.rejects(ec2(OWN, 'ap-south-1').send(new DescribeConversionTasksCommand({})), { name: 'AuthFailure' });
});
