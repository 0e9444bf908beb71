/**
 * The AWS API budget per AWS account and Region (issue 20), through the `vmconvoy` binary: one batch whose
 * rows name two AWS accounts (the worker's own credentials and a profile of a shared credentials file) in
 * one Region. The budget is the AWS API task queue's per-fairness-key rate limit, and each VM's EC2 calls
 * carry its account+Region as fairness key, so the Temporal server limits each account+Region on its own.
 * Shown here by what the server holds and what the histories record, not by rates (a 2-core machine shared
 * with other runs makes timings meaningless): `start --max-api-rate` and `set-limits --max-api-rate` set the
 * per-key limit (and leave no queue-wide one), and every activity a VM schedules on the AWS API queue
 * carries `<account>/<region>` of that VM's row. The rates themselves were measured once by a script (see
 * the README's budget section).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { temporal as proto } from '@temporalio/proto';
import type { ServiceProcess } from '../../dev/process';
import { vmWorkflowId } from '../../common/workflow-ids';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueAccountId } from '../helpers/testbed';
import { runCli, spawnCliWorker, testbedEnv } from './run-cli';

const PROFILE_ACCOUNT = uniqueAccountId();
const PROFILE_KEY = { id: 'AKIDBUDGETB', secret: 'budget-b-secret' };
// Conversions of 30 s keep the batch running through the set-limits calls (set-limits needs a running batch).
const SPEED = { conversionBytesPerSecond: 1024 ** 3, minConversionSeconds: 30, stepSeconds: 1, pendingPollMs: 200 };
const HEADER = 'name,image,format,architecture,instance_type,inspection,aws_profile';
/** Two VMs in each account. */
const ROWS = [
  { name: 'own-1', profile: '' },
  { name: 'own-2', profile: '' },
  { name: 'b-1', profile: 'acct-b' },
  { name: 'b-2', profile: 'acct-b' },
];
const ACTIVITY_QUEUE = proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let env: NodeJS.ProcessEnv;
let apiQueue: string;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({
      config: {
        speed: SPEED,
        accounts: { keys: { [PROFILE_KEY.id]: { secretAccessKey: PROFILE_KEY.secret, accountId: PROFILE_ACCOUNT } } },
      },
    }),
    tempDir('vmconvoy-api-budget-'),
  ]);
  const credentials = path.join(dir.dir, 'aws-credentials');
  const config = path.join(dir.dir, 'aws-config');
  await writeFile(
    credentials,
    `[acct-b]\naws_access_key_id = ${PROFILE_KEY.id}\naws_secret_access_key = ${PROFILE_KEY.secret}\n`
  );
  await writeFile(config, '');
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-api-budget', {
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_CONFIG_FILE: config,
  });
  apiQueue = `${env.VMCONVOY_TASK_QUEUE}-aws-api`;
  await Promise.all(ROWS.map((r) => makeImage(dir.dir, `${r.name}.raw`, 'raw', { virtualMiB: 8, randomMiB: 1 })));
  worker = await spawnCliWorker(env, dir.dir);
});

after(async () => {
  await worker?.stop();
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

/** The rate limits the server holds for the AWS API queue. */
async function queueConfig(): Promise<{ perKey: number | undefined; queueWide: number | undefined }> {
  const res = await temporal.client.workflowService.describeTaskQueue({
    namespace: temporal.namespace,
    taskQueue: { name: apiQueue },
    taskQueueType: ACTIVITY_QUEUE,
    reportConfig: true,
  });
  return {
    perKey: res.config?.fairnessKeysRateLimitDefault?.rateLimit?.requestsPerSecond ?? undefined,
    queueWide: res.config?.queueRateLimit?.rateLimit?.requestsPerSecond ?? undefined,
  };
}

test('the budget is per account+Region: each VM keys its EC2 calls with its account/Region, and set-limits sets the per-key limit', async () => {
  // A queue-wide limit as older versions set it: the budget replaces it (it capped every account together).
  await temporal.client.workflowService.updateTaskQueueConfig({
    namespace: temporal.namespace,
    identity: 'test',
    taskQueue: apiQueue,
    taskQueueType: ACTIVITY_QUEUE,
    updateQueueRateLimit: { rateLimit: { requestsPerSecond: 77 }, reason: 'an older vmconvoy' },
  });
  assert.deepEqual(await queueConfig(), { perKey: undefined, queueWide: 77 });

  const batch = `budget-${Date.now().toString(36)}`;
  const csv = path.join(dir.dir, 'accounts.csv');
  await writeFile(
    csv,
    [HEADER, ...ROWS.map((r) => `${r.name},${r.name}.raw,RAW,x86_64,t2.medium,skip,${r.profile}`)].join('\n') + '\n'
  );
  const started = await vmconvoy('start', csv, '--batch', batch, '--max-api-rate', '60', '--offline');
  assert.equal(started.code, 0, started.stdout + started.stderr);
  assert.match(started.stdout, /AWS API budget: 60 requests\/s per AWS account and Region/);
  assert.deepEqual(await queueConfig(), { perKey: 60, queueWide: undefined }, 'start sets the per-key limit');

  // Live, while the batch runs.
  const changed = await vmconvoy('set-limits', batch, '--max-api-rate', '40', '--json');
  assert.equal(changed.code, 0, changed.stderr);
  const set = JSON.parse(changed.stdout) as { awsApiBudget: { taskQueue: string; requestsPerSecond: number | null } };
  assert.deepEqual(set.awsApiBudget, { taskQueue: apiQueue, requestsPerSecond: 40 });
  assert.deepEqual(await queueConfig(), { perKey: 40, queueWide: undefined }, 'set-limits sets the per-key limit');
  const text = await vmconvoy('set-limits', batch, '--max-api-rate', '45');
  assert.match(
    text.stdout,
    new RegExp(`AWS API budget on task queue ${apiQueue}: 45 requests/s per AWS account and Region`)
  );

  const status = await vmconvoy('status', batch);
  assert.match(status.stdout, /AWS API budget: 45 requests\/s per AWS account and Region/, status.stdout);

  const outcome = (await temporal.client.workflow.getHandle(batch).result()) as { completed?: number };
  assert.ok(outcome, 'the batch ended');
  const ownAccount = sim.accountId;
  const keysSeen = new Set<string>();
  for (const row of ROWS) {
    const expected = `${row.profile ? PROFILE_ACCOUNT : ownAccount}/us-east-1`;
    const history = await temporal.client.workflow.getHandle(vmWorkflowId(batch, row.name)).fetchHistory();
    const onApiQueue = (history.events ?? []).flatMap((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a?.taskQueue?.name === apiQueue ? [a] : [];
    });
    const types = new Set(onApiQueue.map((a) => a.activityType?.name));
    for (const type of ['importInstance', 'describeConversion']) assert.ok(types.has(type), `${row.name}: ${type}`);
    for (const a of onApiQueue) {
      assert.equal(a.priority?.fairnessKey, expected, `${row.name}: ${a.activityType?.name}'s fairness key`);
      keysSeen.add(a.priority.fairnessKey);
    }
    // The other queues' activities (upload, manifest) are not under the EC2 budget and carry no key.
    const elsewhere = (history.events ?? []).flatMap((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a && a.taskQueue?.name !== apiQueue ? [a] : [];
    });
    assert.ok(elsewhere.length > 0, `${row.name} ran activities off the AWS API queue`);
    for (const a of elsewhere) assert.ok(!a.priority?.fairnessKey, `${row.name}: ${a.activityType?.name} keyed`);
  }
  assert.equal(keysSeen.size, 2, 'two accounts, two budgets');

  const json = await vmconvoy('status', batch, '--json');
  const vms = (JSON.parse(json.stdout) as { vms: Array<{ name: string; phase: string }> }).vms;
  for (const vm of vms) assert.equal(vm.phase, 'Completed', vm.name);

  // `default` removes the budget (set-limits needs a running batch; start attaches or starts one).
  const again = await vmconvoy('start', csv, '--batch', `${batch}-x`, '--max-api-rate', 'default', '--offline');
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.deepEqual(await queueConfig(), { perKey: undefined, queueWide: undefined }, 'default removes it');
  await temporal.client.workflow.getHandle(`${batch}-x`).result();
});
