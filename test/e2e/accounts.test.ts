/**
 * Many accounts and Regions (issue 20) through the `vmconvoy` binary: one batch whose rows name two AWS
 * accounts (the worker's own credentials and a profile of a shared credentials file) and two Regions
 * (us-east-1 and eu-west-1, each with its staging bucket on an S3 server of that Region). The simulator
 * maps each access key to an account and keeps conversion tasks per account and Region; the batch runs with
 * one conversion at a time per account+Region, so each of the four quotas must hold on its own: no two
 * tasks of one account+Region overlap, while tasks of different ones do (they never share one limit).
 * Status and report name each VM's account and Region; an unknown profile and a Region without a bucket
 * are refused before anything starts.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import type { S3Server } from '../../dev/services';
import { REPO_ROOT, startS3Server } from '../../dev/services';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueAccountId } from '../helpers/testbed';
import { testbedEnv, runCli, VMCONVOY_BIN } from './run-cli';

const OTHER_REGION = 'eu-west-1';
/** The account of the simulator's own key: its own in this run (testbed startSim), set once it starts. */
let OWN_ACCOUNT = '';
/** Unique too: quota workflows are per account and Region on the Temporal server all test files share. */
const PROFILE_ACCOUNT = uniqueAccountId();
const PROFILE_KEY = { id: 'AKIDACCOUNTB', secret: 'account-b-secret' };

let temporal: TestTemporal;
let s3: TestS3;
let s3Eu: S3Server;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let env: NodeJS.ProcessEnv;
const euBucket = `eu-${Date.now().toString(36)}`;
const stamp = Date.now().toString(36);
// Conversions last a few seconds, so tasks of different accounts+Regions have time to overlap.
const SPEED = {
  conversionBytesPerSecond: 1024 * 1024 * 1024,
  minConversionSeconds: 3,
  stepSeconds: 0.5,
  pendingPollMs: 200,
};
const HEADER = 'name,image,format,architecture,instance_type,inspection,region,aws_profile';
/** Two VMs in each of the four account+Region pairs. */
const ROWS = [
  ['own-use1', '', ''],
  ['own-euw1', OTHER_REGION, ''],
  ['b-use1', '', 'acct-b'],
  ['b-euw1', OTHER_REGION, 'acct-b'],
].flatMap(([prefix, region, profile]) => [1, 2].map((n) => ({ name: `${prefix}-${n}`, region, profile })));

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      config: {
        speed: SPEED,
        accounts: {
          keys: { [PROFILE_KEY.id]: { secretAccessKey: PROFILE_KEY.secret, accountId: PROFILE_ACCOUNT } },
          regions: [OTHER_REGION],
        },
      },
    }),
    tempDir('vmconvoy-accounts-'),
  ]);
  OWN_ACCOUNT = sim.accountId;
  s3Eu = await startS3Server({ dir: path.join(dir.dir, 's3-eu'), region: OTHER_REGION });
  const euClient = new S3Client({
    region: OTHER_REGION,
    endpoint: s3Eu.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3Eu.accessKeyId, secretAccessKey: s3Eu.secretAccessKey },
  });
  await euClient.send(new CreateBucketCommand({ Bucket: euBucket }));
  euClient.destroy();
  const credentials = path.join(dir.dir, 'aws-credentials');
  const config = path.join(dir.dir, 'aws-config');
  await writeFile(
    credentials,
    `[acct-b]\naws_access_key_id = ${PROFILE_KEY.id}\naws_secret_access_key = ${PROFILE_KEY.secret}\n`
  );
  await writeFile(config, '');
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-accounts', {
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_CONFIG_FILE: config,
    VMCONVOY_REGION_BUCKETS: `${OTHER_REGION}=${euBucket}`,
    VMCONVOY_REGION_S3_ENDPOINTS: `${OTHER_REGION}=${s3Eu.endpoint}`,
  });
  await Promise.all(ROWS.map((r) => makeImage(dir.dir, `${r.name}.raw`, 'raw', { virtualMiB: 8, randomMiB: 1 })));
  worker = await spawnService({
    name: 'worker',
    command: process.execPath,
    args: [VMCONVOY_BIN, 'worker', '--log-format', 'json'],
    cwd: REPO_ROOT,
    env,
    logFile: path.join(dir.dir, 'worker.log'),
    readyWhen: (line) => line.includes('vmconvoy worker started'),
    readyTimeoutMs: 120_000,
  });
});

after(async () => {
  await worker?.stop();
  await Promise.all([sim?.stop(), s3?.stop(), s3Eu?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

const csvOf = (rows: Array<{ name: string; region?: string; profile?: string }>): string =>
  [
    HEADER,
    ...rows.map((r) => `${r.name},${r.name}.raw,RAW,x86_64,t2.medium,skip,${r.region ?? ''},${r.profile ?? ''}`),
  ].join('\n') + '\n';

interface OwnedTask {
  id: string;
  accountId: string;
  region: string;
  createdAt: string;
  endedAt?: string;
}

test('the simulator answers STS GetCallerIdentity with the account of the key that signed', async () => {
  const ask = async (accessKeyId: string, secretAccessKey: string, region: string) => {
    const sts = new STSClient({ region, endpoint: sim.endpoint, credentials: { accessKeyId, secretAccessKey } });
    try {
      return (await sts.send(new GetCallerIdentityCommand({}))).Account;
    } finally {
      sts.destroy();
    }
  };
  assert.equal(await ask(s3.accessKeyId, s3.secretAccessKey, s3.region), OWN_ACCOUNT);
  assert.equal(await ask(PROFILE_KEY.id, PROFILE_KEY.secret, OTHER_REGION), PROFILE_ACCOUNT);
  await assert.rejects(ask('AKIDNOBODY', 'x', s3.region), /InvalidClientTokenId|security token/);
});

test('an unknown profile and a Region without a staging bucket are refused before anything starts', async () => {
  const csv = path.join(dir.dir, 'bad.csv');
  await writeFile(
    csv,
    csvOf([
      { name: ROWS[0]!.name, region: '', profile: 'no-such-profile' },
      { name: ROWS[1]!.name, region: 'ap-south-1', profile: '' },
      { name: ROWS[2]!.name, region: 'moon-1', profile: '' },
    ])
  );
  const run = await vmconvoy('start', csv, '--batch', `bad-${stamp}`, '--offline', '--json');
  assert.equal(run.code, 1, run.stdout + run.stderr);
  const out = JSON.parse(run.stdout) as {
    ok: boolean;
    errors: Array<{ line: number; column: string; message: string }>;
  };
  const problem = (column: string) => out.errors.find((e) => e.column === column)?.message ?? '';
  assert.match(problem('region'), /moon-1" is not a Region name/);
  // The two checks that need the inventory's shape to be valid run once the Region is fixed.
  await writeFile(
    csv,
    csvOf([
      { name: ROWS[0]!.name, region: '', profile: 'no-such-profile' },
      { name: ROWS[1]!.name, region: 'ap-south-1', profile: '' },
    ])
  );
  const again = await vmconvoy('start', csv, '--batch', `bad-${stamp}`, '--offline', '--json');
  assert.equal(again.code, 1, again.stdout + again.stderr);
  const errors = (JSON.parse(again.stdout) as typeof out).errors;
  const profileError = errors.find((e) => e.column === 'aws_profile')!.message;
  assert.match(profileError, /AWS profile "no-such-profile" is not defined/);
  assert.ok(profileError.includes(path.join(dir.dir, 'aws-credentials')), profileError);
  assert.ok(profileError.includes(path.join(dir.dir, 'aws-config')), profileError);
  assert.match(errors.find((e) => e.column === 'region')!.message, /no staging bucket for Region ap-south-1/);
  const list = await vmconvoy('status', `bad-${stamp}`, '--json');
  assert.notEqual(list.code, 0, 'nothing was started');
});

test('one batch across two accounts and two Regions: each account+Region keeps its own conversion quota', async () => {
  const batch = `acc-${stamp}`;
  const csv = path.join(dir.dir, 'accounts.csv');
  await writeFile(csv, csvOf(ROWS));
  const started = await vmconvoy('start', csv, '--batch', batch, '--max-conversions', '1', '--offline', '--wait');
  assert.equal(started.code, 0, started.stdout + started.stderr);

  // Every task landed in the account and Region its row names.
  const tasks = (await sim.state()).tasks as unknown as OwnedTask[];
  assert.equal(tasks.length, ROWS.length);
  const owners = new Map<string, OwnedTask[]>();
  for (const t of tasks)
    owners.set(`${t.accountId}/${t.region}`, [...(owners.get(`${t.accountId}/${t.region}`) ?? []), t]);
  assert.deepEqual(
    [...owners.keys()].sort(),
    [
      `${OWN_ACCOUNT}/${OTHER_REGION}`,
      `${OWN_ACCOUNT}/us-east-1`,
      `${PROFILE_ACCOUNT}/${OTHER_REGION}`,
      `${PROFILE_ACCOUNT}/us-east-1`,
    ].sort()
  );
  const span = (t: OwnedTask): [number, number] => [Date.parse(t.createdAt), Date.parse(t.endedAt!)];
  const overlap = (a: OwnedTask, b: OwnedTask): boolean => span(a)[0] < span(b)[1] && span(b)[0] < span(a)[1];
  // Within one account+Region: one conversion at a time (its quota of 1 held).
  for (const [owner, own] of owners) {
    assert.equal(own.length, 2, owner);
    assert.ok(!overlap(own[0]!, own[1]!), `${owner}: two conversions at once despite a limit of 1`);
  }
  // Across them: conversions ran at once, so the four did not share one limit of 1.
  const pairs = tasks.flatMap((a, i) => tasks.slice(i + 1).map((b) => [a, b] as const));
  assert.ok(
    pairs.some(([a, b]) => overlap(a, b)),
    'no two conversions ever ran at once: the account+Region quotas behaved as one'
  );

  // Status names each VM's account and Region, and each quota's limit.
  const status = await vmconvoy('status', batch, '--json');
  assert.equal(status.code, 0, status.stderr);
  const vms = (
    JSON.parse(status.stdout) as { vms: Array<{ name: string; aws?: { accountId: string; region: string } }> }
  ).vms;
  for (const row of ROWS) {
    const vm = vms.find((v) => v.name === row.name);
    assert.deepEqual(
      vm?.aws && { accountId: vm.aws.accountId, region: vm.aws.region },
      { accountId: row.profile ? PROFILE_ACCOUNT : OWN_ACCOUNT, region: row.region || 'us-east-1' },
      row.name
    );
  }
  const text = await vmconvoy('status', batch);
  assert.match(text.stdout, /account\/region/);
  assert.match(text.stdout, new RegExp(`${PROFILE_ACCOUNT}/${OTHER_REGION}`));
  assert.match(text.stdout, new RegExp(`conversions at once: .*${OWN_ACCOUNT}/us-east-1 1`));

  // The report has the account and Region of each VM.
  const report = await vmconvoy('report', batch, '--format', 'csv');
  assert.equal(report.code, 0, report.stderr);
  const [header, ...lines] = report.stdout.trim().split('\n');
  assert.match(header!, /,aws_account_id,aws_region$/);
  const bRow = lines.find((l) => l.startsWith('b-euw1-1,'));
  assert.ok(bRow?.endsWith(`,${PROFILE_ACCOUNT},${OTHER_REGION}`), bRow);
});

interface RollbackJson {
  executed: boolean;
  actions: number;
  items: Array<{ vm: string; kind: string; id: string; action?: string; skip?: string }>;
}

test('rollback reaches every account and Region of the batch, and a second one changes nothing', async () => {
  const batch = `acc-rb-${stamp}`;
  // One VM in each of the four account+Region pairs.
  const rows = ROWS.filter((r) => r.name.endsWith('-1'));
  const csv = path.join(dir.dir, 'accounts-rollback.csv');
  await writeFile(csv, csvOf(rows));
  const started = await vmconvoy('start', csv, '--batch', batch, '--offline', '--wait');
  assert.equal(started.code, 0, started.stdout + started.stderr);
  const instanceOf = new Map(
    (
      JSON.parse((await vmconvoy('status', batch, '--json')).stdout) as {
        vms: Array<{ name: string; instanceId: string | null }>;
      }
    ).vms.map((v) => [v.name, v.instanceId])
  );
  assert.equal([...instanceOf.values()].filter(Boolean).length, rows.length);

  // The preview names every VM's instance, the eu-west-1 ones (records in the eu bucket) included.
  const preview = await vmconvoy('rollback', batch, '--json');
  assert.equal(preview.code, 0, preview.stderr);
  const planned = JSON.parse(preview.stdout) as RollbackJson;
  assert.equal(planned.executed, false);
  for (const row of rows) {
    const item = planned.items.find((i) => i.kind === 'instance' && i.id === instanceOf.get(row.name));
    assert.equal(item?.action, 'terminate', `${row.name}: ${JSON.stringify(item)}`);
  }

  const done = await vmconvoy('rollback', batch, '--yes', '--json');
  assert.equal(done.code, 0, done.stdout + done.stderr);
  const result = JSON.parse(done.stdout) as RollbackJson;
  assert.equal(result.executed, true);
  const terminated = result.items.filter((i) => i.kind === 'instance' && i.action === 'terminate').map((i) => i.id);
  assert.deepEqual(terminated.sort(), [...instanceOf.values()].map(String).sort());
  // The simulator says so too: each of the batch's instances is terminated.
  const instances = (await sim.state()).instances as unknown as Array<{ instanceId: string; state: string }>;
  for (const [vm, id] of instanceOf)
    assert.equal(instances.find((i) => i.instanceId === id)?.state, 'terminated', `${vm} (${id})`);

  const again = await vmconvoy('rollback', batch, '--yes', '--json');
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as RollbackJson).actions, 0, again.stdout);
});
