/**
 * `vmconvoy sim` through the real binary: it keeps serving until SIGTERM (it used to exit about a second
 * after printing that it listens), answers a real SDK call after that, exits 0 on SIGTERM, and `--help`
 * lists its options.
 */
import { DescribeConversionTasksCommand, EC2Client } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
    '--config',
    '--help',
  ]) {
    assert.ok(run.stdout.includes(option), `${option} missing from:\n${run.stdout}`);
  }
  assert.doesNotMatch(run.stderr, /Unknown option/);
});
