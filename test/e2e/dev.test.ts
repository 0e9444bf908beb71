/**
 * `vmconvoy dev` as a user runs it: the local environment in the foreground, the other commands finding
 * it through env.json alone, Ctrl-C stopping everything, and a restart on the same folder keeping the
 * batches. Its simulator judges disks by content (the default), so the VMs are real guest disks.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceProcess } from '../../dev/process';
import { spawnService } from '../../dev/process';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import { tempDir } from '../helpers/testbed';
import { baseEnv, runCli, VMCONVOY_BIN } from './run-cli';

let dir: { dir: string; remove(): Promise<void> };
let dev: ServiceProcess | undefined;
const stateDir = (): string => path.join(dir.dir, 'state');

before(async () => {
  dir = await tempDir('vmconvoy-dev-');
  await makeGuestImage(dir.dir, 'a.raw', GUESTS.ubuntu2204, 'raw', { sizeMiB: 8 });
  await makeGuestImage(dir.dir, 'b.vmdk', GUESTS.centos511, 'stream-vmdk', { sizeMiB: 8 });
  // Real guests on small disks: less free space than VM Import's 250 MiB, so the rows skip inspection.
  await writeFile(
    path.join(dir.dir, 'inv.csv'),
    'name,image,architecture,instance_type,wave,inspection\na-01,a.raw,x86_64,t2.micro,1,skip\nb-01,b.vmdk,x86_64,t2.micro,2,skip\n'
  );
});
after(async () => {
  await dev?.stop(20_000);
  await dir?.remove();
});

function startDev(): Promise<ServiceProcess> {
  return spawnService({
    name: 'vmconvoy dev',
    command: process.execPath,
    args: [VMCONVOY_BIN, 'dev', '--state-dir', stateDir()],
    cwd: dir.dir,
    env: baseEnv({}),
    logFile: path.join(dir.dir, 'dev.log'),
    readyWhen: (line) => line.includes('Ready.'),
    readyTimeoutMs: 180_000,
  });
}

/** Ctrl-C, as a user stops it. */
async function interrupt(service: ServiceProcess): Promise<number | null> {
  service.child.kill('SIGINT');
  return service.exited;
}

test('vmconvoy dev: env.json drives the other commands; Ctrl-C stops it; a restart keeps the batches', async () => {
  dev = await startDev();
  const info = JSON.parse(await readFile(path.join(stateDir(), 'env.json'), 'utf8')) as Record<string, string>;
  assert.deepEqual(
    Object.keys(info).sort(),
    [
      'accessKeyId',
      'bucket',
      'ec2Endpoint',
      'region',
      's3Endpoint',
      'secretAccessKey',
      'simControlUrl',
      'temporalAddress',
      'temporalUiUrl',
    ].sort()
  );
  assert.equal(info.bucket, 'vmconvoy');
  const printed = dev.output.join('\n');
  for (const value of [info.temporalAddress, info.temporalUiUrl, info.s3Endpoint, info.ec2Endpoint])
    assert.ok(printed.includes(value!), `prints ${value}`);

  // Nothing but the env file: the commands find the local environment.
  const env = baseEnv({ VMCONVOY_ENV_FILE: path.join(stateDir(), 'env.json') });
  const started = Date.now();
  const run = await runCli(['start', 'inv.csv', '--batch', 'dev-1', '--wait'], env, dir.dir);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.ok(run.stdout.includes(`Temporal UI: ${info.temporalUiUrl}/namespaces/default/workflows/dev-1`), run.stdout);
  console.log(`[e2e] vmconvoy dev + 2 VMs: ${Math.round((Date.now() - started) / 1000)} s`);
  const tasks = ((await (await fetch(`${info.simControlUrl}/state`)).json()) as { tasks: Array<{ judged?: string }> })
    .tasks;
  // Judged by what the disks hold, as EC2 does: the guests' distributions and kernels.
  assert.deepEqual(tasks.map((t) => /^(Ubuntu|CentOS)\b.*kernel (\S+)/.exec(t.judged ?? '')?.slice(1)).sort(), [
    ['CentOS', '2.6.18-398.el5'],
    ['Ubuntu', '5.15.0-91-generic'],
  ]);

  assert.equal(await interrupt(dev), 0, dev.output.slice(-10).join('\n'));
  assert.match(dev.output.join('\n'), /stopped\./);
  const down = await runCli(['status', 'dev-1'], env, dir.dir);
  assert.equal(down.code, 3, down.stderr);
  assert.match(down.stderr, new RegExp(`Temporal is unreachable at ${info.temporalAddress!.replace(/\./g, '\\.')}`));

  dev = await startDev();
  const again = JSON.parse(await readFile(path.join(stateDir(), 'env.json'), 'utf8')) as Record<string, string>;
  const status = await runCli(
    ['status', 'dev-1', '--json'],
    baseEnv({ VMCONVOY_ENV_FILE: path.join(stateDir(), 'env.json') }),
    dir.dir
  );
  assert.equal(status.code, 0, status.stderr);
  const view = JSON.parse(status.stdout) as { state: string; counts: { completed: number } };
  assert.deepEqual(
    [view.state, view.counts.completed],
    ['completed', 2],
    `the batch survived the restart (${again.temporalAddress})`
  );
  assert.equal(await interrupt(dev), 0);
  dev = undefined;
});
