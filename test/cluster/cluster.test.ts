/**
 * vmconvoy on the production topology (dev/cluster.ts): PostgreSQL, the four Temporal services as separate
 * processes, the Web UI. `vmconvoy setup` prepares the namespace, a worker process runs a 5-VM batch
 * against the EC2 simulator and S3, and mid-batch the history service is killed (SIGKILL) and restarted,
 * then PostgreSQL is restarted, then the matching service is killed and restarted. Every VM must complete with exactly one conversion task, and nothing may
 * be left in the staging bucket. Run by `npm run test:cluster` (not part of `npm test`: it builds the
 * server on first use and takes minutes).
 */
import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import path from 'node:path';
import type { Cluster } from '../../dev/cluster';
import { DYNAMIC_CONFIG_FILE, startCluster } from '../../dev/cluster';
import { resolveTemporalServer } from '../../dev/tools';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import { REPO_ROOT } from '../../dev/services';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
// The simulator's own key belongs to its default account: the local batch's quota is that account's (issue 20).
import { DEFAULT_ACCOUNT_ID } from '../../sim/config';
import { quotaWorkflowId } from '../../common/workflow-ids';
import { LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY } from '../../dev/services';
import { checkBucket, checkConversions, checkHistories, checkLogs, checkOutcomes } from '../chaos/checks';
import type { StatusJson } from '../chaos/checks';
import { makeChaosFleet, PLANNED_FAILURE } from '../chaos/fleet-inventory';
import { baseEnv, runCli } from '../e2e/run-cli';
import type { TestS3, TestSim } from '../helpers/testbed';
import { startS3, startSim, tempDir } from '../helpers/testbed';
import type { Recovery } from './recovery';
import { formatRecoveries, strikeAndMeasure, waitForPhase } from './recovery';

const execFileAsync = promisify(execFile);
const VMS = 5;
const figures: string[] = [];
const say = (line: string): void => {
  figures.push(line);
  console.log(`[cluster-test] ${line}`);
};
const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

let dir: { dir: string; remove(): Promise<void> };
let cluster: Cluster | undefined;
let s3: TestS3 | undefined;
let sim: TestSim | undefined;
let worker: ServiceProcess | undefined;
let connection: Connection | undefined;

before(async () => {
  dir = await tempDir('vmconvoy-cluster-');
  const t0 = Date.now();
  cluster = await startCluster({ dir: dir.dir, log: (line) => say(line) });
  say(
    `cluster started in ${seconds(t0)} (frontend ${cluster.address}, UI ${cluster.uiUrl}, PostgreSQL ${cluster.pg.port})`
  );
  [s3, sim] = await Promise.all([
    startS3(),
    // Conversions last long enough for the disruptions to land while VMs wait on them.
    startSim({ config: { speed: { minConversionSeconds: 20, stepSeconds: 1, pendingPollMs: 300 } } }),
  ]);
  connection = await Connection.connect({ address: cluster.address });
});

after(async () => {
  await worker?.stop(20_000).catch(() => undefined);
  await connection?.close().catch(() => undefined);
  await sim?.stop().catch(() => undefined);
  await s3?.stop().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  if (process.env.VMCONVOY_CLUSTER_KEEP) console.log(`[cluster-test] kept ${dir.dir}`);
  else await dir?.remove();
  console.log(`\n[cluster-test] figures:\n${figures.map((l) => `  ${l}`).join('\n')}`);
});

test('the dynamic-config file holds only keys and types the server knows', async () => {
  const server = await resolveTemporalServer({ build: false });
  assert.ok(server, 'temporal-server was built by startCluster');
  // An unknown key (a typo the server would silently ignore) or a value of the wrong type is printed as
  // a warning, with exit code 0; a file it cannot read prints nothing at all.
  const { stdout } = await execFileAsync(server.path, ['validate-dynamic-config', DYNAMIC_CONFIG_FILE]);
  assert.match(stdout, /vmconvoy\.yaml/);
  assert.doesNotMatch(stdout, /error|warning/i);
});

test('the cluster serves its Web UI and each service its metrics', async () => {
  const ui = await fetch(cluster!.uiUrl!);
  assert.equal(ui.status, 200);
  assert.match(await ui.text(), /<html/i);
  for (const [service, url] of Object.entries(cluster!.metricsUrls)) {
    const res = await fetch(url);
    assert.equal(res.status, 200, `${service} metrics`);
  }
  assert.deepEqual(Object.keys(cluster!.pids()).sort(), [
    'frontend',
    'history',
    'matching',
    'postgres',
    'ui',
    'worker',
  ]);
  // The UI reaches the frontend: its API lists the namespace the cluster created.
  const namespaces = (await (await fetch(`${cluster!.uiUrl}/api/v1/namespaces`)).json()) as {
    namespaces: Array<{ namespaceInfo: { name: string } }>;
  };
  assert.ok(namespaces.namespaces.some((n) => n.namespaceInfo.name === 'default'));
});

test('a 5-VM batch completes on the cluster through history and matching crashes and a PostgreSQL restart', async () => {
  const c = cluster!;
  const env = baseEnv({
    TEMPORAL_ADDRESS: c.address,
    TEMPORAL_NAMESPACE: 'default',
    AWS_REGION: s3!.region,
    AWS_ENDPOINT_URL_S3: s3!.endpoint,
    AWS_ENDPOINT_URL_EC2: sim!.endpoint,
    AWS_ACCESS_KEY_ID: s3!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3!.secretAccessKey,
    AWS_SESSION_TOKEN: '',
    VMCONVOY_BUCKET: s3!.bucket,
    VMCONVOY_ENV_FILE: path.join(dir.dir, 'no-env.json'),
  });

  let t = Date.now();
  const setup = await runCli(['setup', '--json'], env, dir.dir);
  assert.equal(setup.code, 0, `vmconvoy setup: ${setup.stderr}`);
  const setupResult = JSON.parse(setup.stdout) as { added: string[] };
  assert.deepEqual([...setupResult.added].sort(), ['MigrationBatch', 'MigrationPhase', 'MigrationVm']);
  const client = new Client({ connection: connection!, namespace: 'default' });
  // The aliases live in the namespace record, which each service re-reads every few seconds.
  for (const deadline = Date.now() + 30_000; ;) {
    try {
      await client.workflow.count('MigrationBatch = "probe"');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  say(`vmconvoy setup + search attributes visible: ${seconds(t)}`);

  const fleet = await makeChaosFleet({ dir: dir.dir, vms: VMS, waves: 1, failEvery: 0, imageMiB: 64 });
  worker = await spawnService({
    name: 'vmconvoy-worker',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(REPO_ROOT, 'worker', 'main.ts')],
    cwd: REPO_ROOT,
    env: { ...env, VMCONVOY_LOG_FORMAT: 'json' },
    logFile: path.join(dir.dir, 'worker.log'),
    readyWhen: (line) => line.includes('vmconvoy worker started'),
    readyTimeoutMs: 120_000,
  });

  const batch = `cluster-${Date.now().toString(36)}`;
  t = Date.now();
  const start = await runCli(
    ['start', fleet.csv, '--batch', batch, '--max-uploads', '3', '--max-conversions', '5'],
    env,
    dir.dir
  );
  assert.equal(start.code, 0, `vmconvoy start: ${start.stdout}\n${start.stderr}`);
  const batchClosed = async (): Promise<boolean> => {
    try {
      return (await client.workflow.getHandle(batch).describe()).status.name !== 'RUNNING';
    } catch {
      return false;
    }
  };

  const recoveries: Recovery[] = [];
  const strike = { client, cluster: c, batch, timeoutMs: 180_000, batchClosed };
  const busy = ['Uploading', 'Converting'];
  await waitForPhase(client, batch, ['Converting'], 180_000);
  recoveries.push(await strikeAndMeasure({ ...strike, service: 'history', how: 'kill', downForMs: 3000 }));
  await waitForPhase(client, batch, busy, 180_000);
  recoveries.push(await strikeAndMeasure({ ...strike, service: 'postgres', how: 'restart' }));
  // Matching holds task queues in memory: its crash must lose no task (the backlog is in PostgreSQL).
  await waitForPhase(client, batch, busy, 180_000);
  recoveries.push(await strikeAndMeasure({ ...strike, service: 'matching', how: 'kill', downForMs: 2000 }));
  for (const line of formatRecoveries(recoveries)) say(line);

  for (const deadline = Date.now() + 600_000; !(await batchClosed());) {
    assert.ok(Date.now() < deadline, 'the batch did not finish within 10 minutes');
    await new Promise((r) => setTimeout(r, 1000));
  }
  say(`batch of ${VMS} VMs: ${seconds(t)} from start to close`);

  const status = await runCli(['status', batch, '--json'], env, dir.dir);
  assert.equal(status.code, 0, `vmconvoy status: ${status.stderr}`);
  const outcomes = checkOutcomes(fleet.vms, JSON.parse(status.stdout) as StatusJson, PLANNED_FAILURE);
  const conversions = checkConversions(fleet.vms, batch, await sim!.state());
  const bucket = await checkBucket(s3!.client, s3!.bucket, 'vmconvoy/', batch);
  say(
    `outcomes ${JSON.stringify(outcomes.figures)}; conversion tasks ${conversions.figures.tasks} ` +
      `(duplicates ${conversions.figures.duplicates}), ImportInstance calls ${conversions.figures.importCalls}; ` +
      `objects left ${bucket.figures.leftover}`
  );
  // No secret (user data, AWS keys) and no presigned URL in any history or log line.
  const secrets = [...fleet.secrets, LOCAL_SECRET_ACCESS_KEY, LOCAL_ACCESS_KEY_ID];
  const quotaId = quotaWorkflowId(DEFAULT_ACCOUNT_ID, s3!.region);
  const histories = await checkHistories(client, batch, [quotaId], secrets);
  const logs = checkLogs(
    [
      { name: 'worker.log', text: await readFile(path.join(dir.dir, 'worker.log'), 'utf8') },
      ...[setup, start, status].map((run, i) => ({ name: `cli ${i}`, text: `${run.stdout}\n${run.stderr}` })),
    ],
    secrets
  );
  say(
    `secret scan: ${histories.figures.histories} histories, ${histories.figures.events} events, ${logs.figures.logLines} log lines`
  );
  assert.deepEqual(
    [...outcomes.problems, ...conversions.problems, ...bucket.problems, ...histories.problems, ...logs.problems],
    []
  );
  assert.equal(outcomes.figures.completed, VMS);
  assert.equal(conversions.figures.tasks, VMS);
  assert.ok(histories.figures.histories > VMS, 'the scan read the fleet, VM and quota histories');
});

test('stopping the cluster leaves no process behind', async () => {
  await worker?.stop(20_000);
  worker = undefined;
  const pids = Object.values(cluster!.pids()).filter((p): p is number => p !== undefined);
  const t0 = Date.now();
  await cluster!.stop();
  say(`cluster stopped in ${seconds(t0)}`);
  cluster = undefined;
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  assert.deepEqual(alive, []);
});
