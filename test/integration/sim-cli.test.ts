/**
 * `sim/main.ts` as a process: the ready line, credentials/region/config from the command line, the
 * state file flushed on SIGTERM, and a refused bad argument.
 */
import { DescribeConversionTasksCommand, EC2Client } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/testbed';

const MAIN = path.join(__dirname, '..', '..', 'sim', 'main.ts');

function run(args: string[]): {
  child: ChildProcess;
  ready: Promise<string>;
  exited: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('EC2 simulator listening on'));
      if (line) resolve(line);
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, ready, exited, stderr: () => err };
}

test('prints the ready line, honours --access-key/--secret-key/--region/--config, flushes --state on SIGTERM', async () => {
  const dir = await tempDir('vmconvoy-sim-cli-');
  const stateFile = path.join(dir.dir, 'state', 'sim.json');
  const configFile = path.join(dir.dir, 'config.json');
  await writeFile(configFile, JSON.stringify({ limits: { maxActiveConversions: 2 } }));
  const sim = run([
    '--port',
    '0',
    '--state',
    stateFile,
    '--access-key',
    'AKIDCLI',
    '--secret-key',
    'cli-secret',
    '--region',
    'eu-west-1',
    '--config',
    configFile,
  ]);
  try {
    const line = await sim.ready;
    const m = /^EC2 simulator listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    assert.ok(m && Number(m[2]) > 0, line);
    const endpoint = m[1]!;
    const config = (await (await fetch(`${endpoint}/_sim/config`)).json()) as {
      limits: { maxActiveConversions: number };
    };
    assert.equal(config.limits.maxActiveConversions, 2);
    const good = new EC2Client({
      endpoint,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDCLI', secretAccessKey: 'cli-secret' },
      maxAttempts: 1,
    });
    assert.deepEqual((await good.send(new DescribeConversionTasksCommand({}))).ConversionTasks, []);
    const defaults = new EC2Client({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' },
      maxAttempts: 1,
    });
    await assert.rejects(defaults.send(new DescribeConversionTasksCommand({})), { name: 'AuthFailure' });
    good.destroy();
    defaults.destroy();
    sim.child.kill('SIGTERM');
    assert.equal(await sim.exited, 0, sim.stderr());
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { calls: Record<string, number> };
    assert.equal(saved.calls.DescribeConversionTasks, 1, 'the counted call survived in the state file');
  } finally {
    sim.child.kill('SIGKILL');
    await dir.remove();
  }
});

test('a bad --port is refused with a message and exit code 1', async () => {
  const sim = run(['--port', 'eighty']);
  await assert.rejects(sim.ready);
  assert.equal(await sim.exited, 1);
  assert.match(sim.stderr(), /--port must be 0-65535/);
});

test('SIGINT (Ctrl-C) stops it cleanly too, and the port is free again', async () => {
  const sim = run(['--port', '0']);
  try {
    const endpoint = /(http:\/\/\S+)$/.exec(await sim.ready)![1]!;
    assert.equal((await fetch(`${endpoint}/_sim/state`)).status, 200);
    sim.child.kill('SIGINT');
    assert.equal(await sim.exited, 0, sim.stderr());
    await assert.rejects(fetch(`${endpoint}/_sim/state`), 'nothing listens any more');
  } finally {
    sim.child.kill('SIGKILL');
  }
});
