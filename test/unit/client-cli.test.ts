import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../common/config';
import { controlTaskQueueOf } from '../../common/task-queues';
import { fleetInputFor } from '../../client/commands/start';
import type { Io } from '../../client/main';
import { main } from '../../client/main';
import { batchUiLink, effectiveEnv, isLoopback, quotaWorkflowIdFor, takeEnvOption } from '../../client/settings';
import { REPO_ROOT } from '../../dev/services';
import { DEFAULT_SETTINGS } from '../../common/contracts/migration';
import { tempDir } from '../helpers/testbed';

let dir: { dir: string; remove(): Promise<void> };
let envFile: string;
before(async () => {
  dir = await tempDir('vmconvoy-cli-');
  envFile = path.join(dir.dir, 'env.json');
  await writeFile(
    envFile,
    JSON.stringify({
      temporalAddress: '127.0.0.1:17233',
      temporalUiUrl: 'http://127.0.0.1:18233',
      s3Endpoint: 'http://127.0.0.1:17070',
      ec2Endpoint: 'http://127.0.0.1:14566',
      bucket: 'vmconvoy',
      simControlUrl: 'http://127.0.0.1:14566/_sim',
      region: 'us-east-1',
      accessKeyId: 'vmconvoy-local',
      secretAccessKey: 'vmconvoy-local-secret',
    })
  );
});
after(async () => dir?.remove());

function vmconvoy(
  args: string[],
  env: NodeJS.ProcessEnv = {}
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        VMCONVOY_ENV_FILE: path.join(dir.dir, 'none.json'),
        ...env,
      },
      cwd: dir.dir,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The CLI in this process, output captured (fast: no tsx start-up per call). */
async function inProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => (stdout += `${t}\n`),
    err: (t) => (stderr += `${t}\n`),
    write: (t) => (stdout += t),
    writeErr: (t) => (stderr += t),
    tty: false,
    color: false,
  };
  const code = await main(args, { VMCONVOY_ENV_FILE: path.join(dir.dir, 'none.json') }, io);
  return { code, stdout, stderr };
}

test('env.json stands in for the environment only when no target is configured', () => {
  const local = effectiveEnv({
    VMCONVOY_ENV_FILE: envFile,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIAREAL',
    VMCONVOY_TASK_QUEUE: 'q',
  });
  assert.equal(local.TEMPORAL_ADDRESS, '127.0.0.1:17233');
  assert.equal(local.AWS_ENDPOINT_URL_EC2, 'http://127.0.0.1:14566');
  assert.equal(local.AWS_REGION, 'us-east-1', 'the local environment wins over a region set for real AWS');
  assert.equal(local.AWS_ACCESS_KEY_ID, 'vmconvoy-local');
  assert.equal(local.VMCONVOY_TASK_QUEUE, 'q', 'other settings stay');
  assert.equal(local.VMCONVOY_TEMPORAL_UI, 'http://127.0.0.1:18233');
  const configured = { VMCONVOY_ENV_FILE: envFile, TEMPORAL_ADDRESS: 'temporal:7233' };
  assert.deepEqual(effectiveEnv(configured), configured);
  const missing = { VMCONVOY_ENV_FILE: path.join(dir.dir, 'missing.json') };
  assert.deepEqual(effectiveEnv(missing), missing);
});

test("env.json never keeps the operator's session token: local keys go without it", () => {
  const local = effectiveEnv({
    VMCONVOY_ENV_FILE: envFile,
    AWS_ACCESS_KEY_ID: 'ASIAREALREALREALREAL',
    AWS_SECRET_ACCESS_KEY: 'real-secret',
    AWS_SESSION_TOKEN: 'real-session-token',
    AWS_SECURITY_TOKEN: 'real-session-token',
    AWS_PROFILE: 'prod',
  });
  assert.equal(local.AWS_ACCESS_KEY_ID, 'vmconvoy-local');
  assert.equal(local.AWS_SESSION_TOKEN, undefined);
  assert.equal(local.AWS_SECURITY_TOKEN, undefined);
  assert.equal(local.AWS_PROFILE, undefined);
  assert.equal(loadConfig(local).aws.sessionToken, undefined);
});

test('.vmconvoy/env.json in the current directory is read only when every endpoint in it is on loopback', async () => {
  const here = process.cwd();
  const write = async (folder: string, s3Endpoint: string): Promise<void> => {
    await mkdir(path.join(folder, '.vmconvoy'), { recursive: true });
    await writeFile(
      path.join(folder, '.vmconvoy', 'env.json'),
      JSON.stringify({
        temporalAddress: '127.0.0.1:17233',
        temporalUiUrl: 'http://localhost:18233',
        s3Endpoint,
        ec2Endpoint: 'http://[::1]:14566',
        bucket: 'vmconvoy',
        region: 'us-east-1',
        accessKeyId: 'vmconvoy-local',
        secretAccessKey: 'vmconvoy-local-secret',
      })
    );
  };
  const loopbackDir = path.join(dir.dir, 'loopback');
  const hostileDir = path.join(dir.dir, 'hostile');
  await write(loopbackDir, 'http://127.0.0.1:17070');
  await write(hostileDir, 'https://s3.attacker.example');
  const real = { AWS_ACCESS_KEY_ID: 'ASIAREALREALREALREAL', AWS_SESSION_TOKEN: 'real-session-token' };
  try {
    process.chdir(loopbackDir);
    const local = effectiveEnv(real);
    assert.equal(local.AWS_ENDPOINT_URL_S3, 'http://127.0.0.1:17070');
    assert.equal(local.AWS_SESSION_TOKEN, undefined);
    process.chdir(hostileDir);
    assert.throws(() => effectiveEnv(real), /points at endpoints off this machine \(https:\/\/s3\.attacker\.example\)/);
    // Named, it is the operator's choice.
    const named = path.join(hostileDir, '.vmconvoy', 'env.json');
    assert.equal(
      effectiveEnv({ ...real, VMCONVOY_ENV_FILE: named }).AWS_ENDPOINT_URL_S3,
      'https://s3.attacker.example'
    );
    assert.equal(effectiveEnv(real, named).AWS_ENDPOINT_URL_S3, 'https://s3.attacker.example');
    assert.equal(effectiveEnv({ TEMPORAL_ADDRESS: 't:7233' }, named).TEMPORAL_ADDRESS, '127.0.0.1:17233', '--env wins');
  } finally {
    process.chdir(here);
  }
  assert.throws(() => effectiveEnv({}, path.join(dir.dir, 'nope.json')), /--env .*nope\.json: no such file/);
  for (const a of ['127.0.0.1:7233', 'http://localhost:8233', 'http://[::1]:4566', 'http://127.8.9.10'])
    assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1:7233', 'http://localhost.attacker.example', 'https://127.0.0.1.nip.io', ''])
    assert.equal(isLoopback(a), false, a);
  assert.deepEqual(takeEnvOption(['status', '--env', 'e.json', 'b1']), { argv: ['status', 'b1'], envFile: 'e.json' });
  assert.deepEqual(takeEnvOption(['--env=e.json', 'status']), { argv: ['status'], envFile: 'e.json' });
  assert.deepEqual(takeEnvOption(['start', '--', '--env']), { argv: ['start', '--', '--env'], envFile: undefined });
});

test('the fleet input: limits and flags applied to the defaults, quota per EC2 endpoint and region', () => {
  const local = loadConfig(effectiveEnv({ VMCONVOY_ENV_FILE: envFile }));
  assert.equal(quotaWorkflowIdFor(local.aws), 'vmconvoy-quota/http://127.0.0.1:14566/us-east-1');
  assert.equal(quotaWorkflowIdFor({ region: 'eu-west-1' }), 'vmconvoy-quota/aws/eu-west-1');
  const input = fleetInputFor(
    'b1',
    20,
    'vmconvoy/b1/inventory.jsonl',
    { batch: 'b1', maxUploads: 2, canary: 3, failureBudget: 10, dryRun: true },
    local
  );
  assert.deepEqual(input, {
    batch: 'b1',
    inventoryKey: 'vmconvoy/b1/inventory.jsonl',
    total: 20,
    limits: { maxUploads: 2, maxConversions: 5 },
    settings: { ...DEFAULT_SETTINGS, dryRun: true, awsApiTaskQueue: 'vmconvoy-aws-api' },
    canary: 3,
    failureBudgetPercent: 10,
    quotaWorkflowId: 'vmconvoy-quota/http://127.0.0.1:14566/us-east-1',
    vmTaskQueue: 'vmconvoy',
  });
  assert.equal(
    controlTaskQueueOf(local.temporal),
    'vmconvoy-control',
    'the fleet runs beside its VMs, on a queue of its own'
  );
  assert.equal(
    batchUiLink({ VMCONVOY_TEMPORAL_UI: 'http://ui:8233/' }, 'default', 'b1'),
    'http://ui:8233/namespaces/default/workflows/b1'
  );
});

test('--help of every command shows an example; usage errors exit 1', async () => {
  for (const command of [
    'validate',
    'start',
    'status',
    'pause',
    'resume',
    'cancel',
    'retry',
    'set-limits',
    'report',
    'setup',
    'worker',
    'dev',
  ]) {
    const help = await inProcess([command, '--help']);
    assert.equal(help.code, 0, `${command} --help: ${help.stderr}`);
    assert.match(help.stdout, /Examples?:\n {2}\$ .*vmconvoy /, `${command} --help has an example`);
  }
  assert.match(
    (await inProcess(['--help'])).stdout,
    /\.vmconvoy\/env\.json exists with loopback endpoints only[\s\S]*`--env FILE` \(or \$VMCONVOY_ENV_FILE\)/
  );
  const noBatch = await vmconvoy(['start', 'inv.csv']);
  assert.equal(noBatch.code, 1);
  assert.match(noBatch.stderr, /required option '--batch <name>' not specified/);
  const badFlag = await vmconvoy(['start', 'inv.csv', '--batch', 'b', '--max-uploads', 'many']);
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /--max-uploads must be a whole number of at least 1/);
  const badFormat = await inProcess(['report', 'b', '--format', 'xml']);
  assert.equal(badFormat.code, 1);
  assert.match(badFormat.stderr, /Allowed choices are csv, json, md/);
  assert.equal((await inProcess(['frobnicate'])).code, 1);
});

test('an unreachable Temporal server is exit code 3, naming the address and `vmconvoy dev`', async () => {
  const result = await vmconvoy(['status', 'b1'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /Temporal is unreachable at 127\.0\.0\.1:1 .*\n.*`vmconvoy dev`/);
});

test('start reports an invalid inventory (exit 1) before it needs Temporal, and without AWS settings says what to set', async () => {
  const csv = path.join(dir.dir, 'bad.csv');
  await writeFile(csv, 'name,image,architecture,instance_type\nvm 1,x.raw,x86_64,t2.micro\n');
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', AWS_REGION: 'us-east-1', VMCONVOY_BUCKET: 'bucket' };
  const result = await vmconvoy(['start', csv, '--batch', 'b1'], env);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /bad\.csv:2 \[name\]: "vm 1"/);
  assert.match(result.stderr, /bad\.csv:2 \[image\]: .*x\.raw/);
  const json = await vmconvoy(['start', csv, '--batch', 'b1', '--json'], env);
  assert.equal(json.code, 1);
  assert.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, false);
  const unconfigured = await vmconvoy(['start', csv, '--batch', 'b1']);
  assert.equal(unconfigured.code, 1);
  assert.match(unconfigured.stderr, /VMCONVOY_BUCKET/);
  assert.match(unconfigured.stderr, /vmconvoy dev/);
});

test('vmconvoy sim keeps serving after it starts listening, until Ctrl-C', async () => {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), 'sim', '--port', '0'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, VMCONVOY_ENV_FILE: path.join(dir.dir, 'none.json') },
    cwd: dir.dir,
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    let stdout = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        const listening = /listening on (\S+)/.exec(stdout);
        if (listening) resolve(listening[1]!);
      });
      void exited.then((code) => reject(new Error(`exited with ${code} before listening: ${stdout}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(child.exitCode, null, 'still running a second after it listens');
    const answer = await fetch(url, { signal: AbortSignal.timeout(5000) });
    assert.ok(answer.status >= 200, 'and answers requests');
    await answer.body?.cancel();
    child.kill('SIGINT');
    assert.equal(await exited, 0, 'Ctrl-C stops it cleanly');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('an error message carrying a hostile name shows its control characters as escapes, not terminal codes', async () => {
  const run = await inProcess(['validate', path.join(dir.dir, 'evil\x1b]0;owned\x07\x1b[2J.csv')]);
  assert.equal(run.code, 1);
  assert.match(run.stderr + run.stdout, /evil/);
  const shown = run.stderr + run.stdout;
  assert.ok(!shown.includes('\x1b') && !shown.includes('\x07'), 'no raw ESC or BEL reaches the terminal');
});

test('--env FILE anywhere on the command line points every command at that environment', async () => {
  const run = await inProcess(['status', 'some-batch', '--env', envFile]);
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /Temporal is unreachable at 127\.0\.0\.1:17233/);
});
