/**
 * A worker process with no image roots refuses to start unless told explicitly (issue 15, item 1): an
 * inventory names the files a worker reads, so without roots it could name any file the worker user can
 * read. The real `vmconvoy` command is spawned; the refusal comes before any connection (its Temporal
 * address here is a closed port), and the explicit ways to start (`--allow-any-path`,
 * VMCONVOY_ALLOW_ANY_PATH=1, VMCONVOY_IMAGE_ROOTS) reach the test's Temporal server.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../../dev/process';
import { REPO_ROOT } from '../../dev/services';
import type { TestTemporal } from '../helpers/testbed';
import { startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';

let temporal: TestTemporal;
let tmp: { dir: string; remove(): Promise<void> };
const children = new Set<ChildProcess>();

before(async () => {
  [temporal, tmp] = await Promise.all([startTemporal(), tempDir('vmconvoy-worker-roots-')]);
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([tmp?.remove(), temporal?.stop()]);
});

interface Run {
  code: number | null;
  output: string;
  ms: number;
}

/**
 * `vmconvoy worker <args>` with only the given settings; resolves when it exits, or (with `untilLine`) as
 * soon as a line containing it appears, then stops it with SIGTERM (the worker shuts down cleanly).
 */
function vmconvoyWorker(args: string[], env: NodeJS.ProcessEnv, untilLine?: string): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), 'worker', ...args], {
    cwd: tmp.dir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_REGION: 'us-east-1',
      VMCONVOY_BUCKET: 'vmconvoy-test',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      VMCONVOY_ENV_FILE: path.join(tmp.dir, 'no-env.json'),
      VMCONVOY_LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  let seen = false;
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    if (untilLine && !seen && output.includes(untilLine)) {
      seen = true;
      child.kill('SIGTERM');
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve({ code, output, ms: Date.now() - t0 });
    });
  });
}

test('without image roots: exit 1 before connecting, saying why and what to set', async () => {
  const closed = `127.0.0.1:${await freePort()}`;
  const run = await vmconvoyWorker([], { TEMPORAL_ADDRESS: closed });
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /no image roots are set, so an inventory could make this worker read any file it can read/);
  assert.match(run.output, /Set VMCONVOY_IMAGE_ROOTS to the folders that hold the images and user-data files/);
  assert.match(run.output, /--allow-any-path \(or VMCONVOY_ALLOW_ANY_PATH=1\)/);
  // Refused on its configuration, not on the closed port: no connection was tried.
  assert.doesNotMatch(run.output, /connect|unreachable|vmconvoy worker started/i);
});

test('--allow-any-path: starts, and warns that any path may be read', async () => {
  const run = await vmconvoyWorker(
    ['--allow-any-path', '--upload-only'],
    { TEMPORAL_ADDRESS: temporal.address, VMCONVOY_UPLOAD_TASK_QUEUE: uniqueTaskQueue('roots-flag') },
    'vmconvoy worker started'
  );
  assert.match(run.output, /vmconvoy worker started/);
  assert.match(
    run.output,
    /no image roots: an inventory may name any file this worker can read \(allowed explicitly\)/
  );
  assert.doesNotMatch(run.output, /no image roots are set, so/);
});

test('VMCONVOY_ALLOW_ANY_PATH=1 or VMCONVOY_IMAGE_ROOTS: starts', async () => {
  const common = { TEMPORAL_ADDRESS: temporal.address, VMCONVOY_UPLOAD_TASK_QUEUE: uniqueTaskQueue('roots-env') };
  const byEnv = await vmconvoyWorker(
    ['--upload-only'],
    { ...common, VMCONVOY_ALLOW_ANY_PATH: '1' },
    'vmconvoy worker started'
  );
  assert.match(byEnv.output, /vmconvoy worker started/);
  const withRoots = await vmconvoyWorker(
    ['--upload-only'],
    { ...common, VMCONVOY_IMAGE_ROOTS: tmp.dir },
    'vmconvoy worker started'
  );
  assert.match(withRoots.output, /vmconvoy worker started/);
  assert.ok(withRoots.output.includes(`"imageRoots":"${tmp.dir}"`), withRoots.output);
  assert.doesNotMatch(withRoots.output, /no image roots/);
});
