/**
 * `vmconvoy sim` through the real binary: it keeps serving until SIGTERM (it used to exit about a second
 * after printing that it listens), answers a real SDK call after that, exits 0 on SIGTERM, and `--help`
 * lists its options; `--profile realistic` starts it on the realistic timing preset (a `--config` file's keys
 * apply on top) and an unknown profile is refused before it listens.
 */
import { DescribeConversionTasksCommand, EC2Client } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { VMCONVOY_BIN, baseEnv, runCli } from './run-cli';

test('vmconvoy sim serves until SIGTERM, then exits 0', async () => {
  const child = spawn(
    process.execPath,
    [VMCONVOY_BIN, 'sim', '--port', '0', '--access-key', 'AKIDE2E', '--secret-key', 'e2e-secret'],
    {
      env: baseEnv({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: Date.now() }))
  );
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /EC2 simulator listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then(({ code }) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
    });
    const ready = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const ec2 = new EC2Client({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDE2E', secretAccessKey: 'e2e-secret' },
      maxAttempts: 1,
    });
    try {
      const out = await ec2.send(new DescribeConversionTasksCommand({}));
      assert.deepEqual(out.ConversionTasks, [], 'still serving 3 s after it said it listens');
    } finally {
      ec2.destroy();
    }
    const earlyExit = await Promise.race([
      exited.then(({ at }) => at - ready),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 10)),
    ]);
    assert.equal(earlyExit, undefined, 'the process is still running');
    child.kill('SIGTERM');
    const { code } = await exited;
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
});

test('vmconvoy sim --help lists its options and exits 0', async () => {
  const run = await runCli(['sim', '--help'], baseEnv({}));
  assert.equal(run.code, 0, run.stderr);
  for (const option of [
    '--port',
    '--host',
    '--state',
    '--access-key',
    '--secret-key',
    '--region',
    '--profile',
    '--config',
    '--help',
  ]) {
    assert.ok(run.stdout.includes(option), `${option} missing from:\n${run.stdout}`);
  }
  assert.doesNotMatch(run.stderr, /Unknown option/);
});

/** Starts `vmconvoy sim --port 0 ...args`, waits until it listens, returns its config and stops it (SIGTERM, exit 0). */
async function configOfRunningSim(args: string[]): Promise<Record<string, Record<string, unknown>>> {
  const child = spawn(process.execPath, [VMCONVOY_BIN, 'sim', '--port', '0', ...args], {
    env: baseEnv({}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /EC2 simulator listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
    });
    const res = await fetch(`${endpoint}/_sim/config`);
    assert.equal(res.status, 200);
    const config = (await res.json()) as Record<string, Record<string, unknown>>;
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    return config;
  } finally {
    child.kill('SIGKILL');
  }
}

test('vmconvoy sim --profile realistic serves the realistic preset; --config keys apply on top; the default is fast', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sim-profile-'));
  try {
    const realistic = await configOfRunningSim(['--profile', 'realistic']);
    assert.equal(realistic.profile, 'realistic');
    assert.deepEqual(
      [realistic.speed!.secondsPerGiB, realistic.speed!.conversionSlots, realistic.speed!.bytesConverted],
      [180, 2, 'zero-until-done']
    );
    assert.deepEqual(realistic.consistency, { listingDelayMinSeconds: 1, listingDelayMaxSeconds: 15 });

    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ speed: { timeScale: 0.01 }, limits: { maxActiveConversions: 3 } }));
    const scaled = await configOfRunningSim(['--profile', 'realistic', '--config', file]);
    assert.deepEqual(
      [scaled.profile, scaled.speed!.secondsPerGiB, scaled.speed!.timeScale, scaled.limits!.maxActiveConversions],
      ['realistic', 180, 0.01, 3]
    );

    const fast = await configOfRunningSim([]);
    assert.deepEqual(
      [fast.profile, fast.speed!.secondsPerGiB, fast.speed!.conversionSlots, fast.consistency!.listingDelayMaxSeconds],
      ['fast', 0, 0, 0]
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('vmconvoy sim refuses an unknown profile, and a --config file that names another one, before it listens', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sim-profile-'));
  try {
    const slow = await runCli(['sim', '--port', '0', '--profile', 'slow'], baseEnv({}));
    assert.equal(slow.code, 1);
    assert.match(slow.stderr, /--profile must be one of fast, realistic \(got slow\)/);
    assert.doesNotMatch(slow.stdout, /listening/);

    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ profile: 'fast' }));
    const clash = await runCli(['sim', '--port', '0', '--profile', 'realistic', '--config', file], baseEnv({}));
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /--profile realistic but .*config\.json says "profile": "fast"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
