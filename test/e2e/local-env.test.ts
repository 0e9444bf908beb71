/**
 * The `vmconvoy` binary as a user runs it against the local environment of `vmconvoy dev` / the demo
 * (dev/local-env.ts: Temporal dev server, S3 server, EC2 simulator and a worker process, all on free
 * loopback ports, state in a temp folder): the environment itself, then a worker crash and a restart of
 * the whole environment in the middle of a batch. The CLI's commands (validate, 20 VMs in two waves,
 * reports, relaunch, retry, pause/resume, cancel --vm) are covered by test/e2e/cli.test.ts.
 *
 * One environment for the file (starting it takes seconds); every test uses its own batch name.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { LocalEnv } from '../../dev/local-env';
import { envVarsFor, readEnvFile, startLocalEnv } from '../../dev/local-env';
import { freePort } from '../../dev/process';
import { makeImage } from '../helpers/images';
import type { CliRun } from './run-cli';
import { runCli } from './run-cli';
import type { SimState } from '../helpers/testbed';
import { tempDir } from '../helpers/testbed';

const FAST = {
  conversionBytesPerSecond: 256 * 1024 * 1024,
  stepSeconds: 0.2,
  pendingPollMs: 200,
  minConversionSeconds: 0,
};
/** 4 MiB images convert in ~30 s at this speed: slow enough to pause, cancel or crash in the middle. */
const SLOW = { conversionBytesPerSecond: 128 * 1024 };
const FAIL_MESSAGE =
  'ClientError: Unsupported kernel version 2.6.18 (upgrade the kernel to a supported version before export)';
// The images are random bytes, not guests: each row skips the look inside the guest (RANDOM_IMAGE_ROW).
const HEADER = 'name,image,format,architecture,instance_type,platform,wave,tags,inspection';
const stamp = Date.now().toString(36);

let dir: { dir: string; remove(): Promise<void> };
let local: LocalEnv;
let env: NodeJS.ProcessEnv;
const stateDir = (): string => path.join(dir.dir, 'state');

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

function vmconvoy(...args: string[]): Promise<CliRun> {
  return runCli(args, env, dir.dir);
}

const show = (run: CliRun): string => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

interface StatusJson {
  batch: string;
  state: string;
  counts: {
    pending: number;
    uploading: number;
    converting: number;
    validating: number;
    completed: number;
    failed: number;
    cancelled: number;
  };
  vms: Array<{
    name: string;
    phase: string;
    percent: number;
    conversionTaskId: string | null;
    instanceId: string | null;
    error: string | null;
  }>;
}

async function status(batch: string): Promise<StatusJson> {
  const run = await vmconvoy('status', batch, '--json');
  assert.ok(run.code === 0 || run.code === 2, show(run));
  return JSON.parse(run.stdout) as StatusJson;
}

async function simState(): Promise<SimState> {
  const res = await fetch(`${local.info.simControlUrl}/state`);
  assert.ok(res.ok, `GET /_sim/state: ${res.status}`);
  return (await res.json()) as SimState;
}

async function simConfigure(patch: unknown): Promise<void> {
  const res = await fetch(`${local.info.simControlUrl}/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  assert.ok(res.ok, `POST /_sim/config: ${res.status} ${await res.text()}`);
}

/** The simulator's ImportInstance tasks of one VM, found by the manifest path `<prefix><batch>/<vm>/manifest.xml`. */
async function tasksOf(batch: string, vm?: string): Promise<SimState['tasks']> {
  const needle = vm === undefined ? `/${batch}/` : `/${batch}/${vm}/`;
  return (await simState()).tasks.filter((t) => decodeURIComponent(t.manifestUrl).includes(needle));
}

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 90_000,
  intervalMs = 300
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const CONVERTING = ['WaitingForSlot', 'Importing', 'Converting'];

// ---------------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------------

before(async () => {
  dir = await tempDir('vmconvoy-e2e-local-');
  const images = Promise.all([
    makeImage(dir.dir, 'web.vmdk', 'stream-vmdk', { virtualMiB: 4, randomMiB: 1 }),
    makeImage(dir.dir, 'app.vhd', 'fixed-vhd', { virtualMiB: 4, randomMiB: 1 }),
    makeImage(dir.dir, 'db.vhd', 'dynamic-vhd', { virtualMiB: 4, randomMiB: 1 }),
    makeImage(dir.dir, 'cache.raw', 'raw', { virtualMiB: 4, randomMiB: 1 }),
    makeImage(dir.dir, 'clean.raw', 'raw', { virtualMiB: 4, randomMiB: 1 }),
    makeImage(dir.dir, 'legacy.raw', 'raw', {
      virtualMiB: 4,
      randomMiB: 1,
      marker: `VMCONVOY_SIM_FAIL=${FAIL_MESSAGE}`,
    }),
  ]);
  // Every port free (never the 7233/8233 a developer's `vmconvoy dev` may hold).
  const ports = { temporal: await freePort(), ui: await freePort(), s3: await freePort(), ec2: await freePort() };
  const started = Date.now();
  local = await startLocalEnv({
    stateDir: stateDir(),
    ports,
    simConfig: { judge: { content: false }, speed: FAST },
    log: () => undefined,
  });
  console.log(`[e2e] local environment up in ${Math.round((Date.now() - started) / 1000)} s`);
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NO_COLOR: '1',
    // Only what envVarsFor says: the test proves it is all a CLI needs.
    VMCONVOY_ENV_FILE: path.join(dir.dir, 'no-such-env.json'),
    ...envVarsFor(local.info),
  };
  await images;
});

after(async () => {
  await local?.stop();
  await dir?.remove();
});

test('startLocalEnv: the requested ports, env.json, the bucket, a running worker', async () => {
  const info = local.info;
  assert.equal(
    await readEnvFile(path.join(stateDir(), 'env.json')).then((i) => JSON.stringify(i)),
    JSON.stringify(info)
  );
  assert.equal(await readEnvFile(path.join(dir.dir, 'missing.json')), undefined);
  assert.equal(info.bucket, 'vmconvoy');
  assert.match(info.temporalAddress, /^127\.0\.0\.1:\d+$/);
  assert.doesNotMatch(info.temporalAddress, /:7233$/);
  assert.equal(info.simControlUrl, `${info.ec2Endpoint}/_sim`);
  assert.ok(local.workerProcess, 'a worker process');
  assert.equal(local.workerProcess.child.exitCode, null);
  assert.deepEqual(Object.keys(await simState()).sort(), ['calls', 'instances', 'tasks', 'throttled', 'volumes']);
  // One environment per folder: a second one on the same state would share Temporal's SQLite file.
  await assert.rejects(
    startLocalEnv({ stateDir: stateDir(), log: () => undefined }),
    /is in use by another local environment/
  );
  const vars = envVarsFor(info);
  for (const name of [
    'TEMPORAL_ADDRESS',
    'AWS_REGION',
    'AWS_ENDPOINT_URL_EC2',
    'AWS_ENDPOINT_URL_S3',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'VMCONVOY_BUCKET',
  ]) {
    assert.ok(vars[name], `envVarsFor sets ${name}`);
  }
});

test('a worker crash mid-conversion and a restart of the whole environment: the batch continues, one task per VM', async () => {
  const names = ['c1', 'c2', 'c3'];
  await writeFile(
    path.join(dir.dir, 'crash.csv'),
    [HEADER, ...names.map((n, i) => `${n},${i === 1 ? 'web.vmdk' : 'cache.raw'},,x86_64,t2.micro,,1,,skip`)].join(
      '\n'
    ) + '\n'
  );
  const batch = `crash-${stamp}`;
  await simConfigure({ speed: SLOW });
  const start = await vmconvoy('start', 'crash.csv', '--batch', batch, '--max-conversions', '2');
  assert.equal(start.code, 0, show(start));
  await eventually('a conversion under way', async () =>
    (await status(batch)).vms.some((v) => CONVERTING.includes(v.phase) && v.conversionTaskId)
  );

  // The worker dies (SIGKILL) and comes back.
  await local.killWorker();
  assert.notEqual(local.workerProcess?.child.signalCode ?? null, null, 'the worker was killed');
  await local.restartWorker();
  assert.equal(local.workerProcess?.child.exitCode, null);

  // Everything stops and starts again on the same folder (and, from env.json, the same ports).
  const before = local.info;
  await local.stop();
  local = await startLocalEnv({
    stateDir: stateDir(),
    simConfig: { judge: { content: false }, speed: FAST },
    log: () => undefined,
  });
  assert.deepEqual(local.info, before, 'the same endpoints after a restart');

  const watched = await vmconvoy('status', batch, '--watch');
  assert.equal(watched.code, 0, show(watched));
  const done = await status(batch);
  assert.equal(done.state, 'completed');
  assert.equal(done.counts.completed, 3);
  for (const name of names) assert.equal((await tasksOf(batch, name)).length, 1, `one conversion task for ${name}`);
});
