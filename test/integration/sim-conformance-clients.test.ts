/**
 * The simulator driven by AWS clients nobody on the project wrote: the AWS CLI v1 and boto3, installed from
 * PyPI (pinned in test/conformance/requirements.txt) and signing as they ship. Every raw response boto3
 * receives is walked against botocore's EC2 service model (test/conformance/ec2_shapes.py), and the
 * documented error codes come back with their HTTP status. The CLI v1 has no `import-instance` (removed in
 * awscli/customizations/removals.py), so it runs the other calls and boto3 imports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { resolvePythonVenv } from '../../dev/python-venv';
import type { PythonVenv } from '../../dev/python-venv';
import { createActivities } from '../../activities';
import type { Simulator } from '../../sim';
import { startSimulator } from '../../sim';
import { makeImage } from '../helpers/images';
import type { TestS3 } from '../helpers/testbed';
import { localAwsConfig, RANDOM_IMAGES, startS3, tempDir } from '../helpers/testbed';

const CREDS = { accessKeyId: 'vmconvoy-local', secretAccessKey: 'vmconvoy-local-secret' };
const FAST = {
  ...RANDOM_IMAGES,
  speed: { conversionBytesPerSecond: 512 * 1024 * 1024, stepSeconds: 0.1, pendingPollMs: 100, cancelSeconds: 0.2 },
};
const CONFORMANCE = path.join(__dirname, '..', 'conformance');

interface Report {
  botocore: string;
  responses: number;
  operations: string[];
  violations: string[];
  cases: Array<{ name: string; ok: boolean; detail: string }>;
}

let venv: PythonVenv;
let s3: TestS3;
let sim: Simulator;
let dir: { dir: string; remove(): Promise<void> };
let report: Report;

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin = ''
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: CONFORMANCE });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** Only what the clients need: no shared config or credentials files, no instance metadata lookups. */
function clientEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir.dir,
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: path.join(dir.dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir.dir, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

const aws = (...args: string[]) =>
  run(venv.aws, ['ec2', ...args, '--endpoint-url', sim.url, '--output', 'json'], clientEnv());

before(async () => {
  [venv, s3, dir] = await Promise.all([
    resolvePythonVenv({ log: (l) => console.log(`[venv] ${l}`) }),
    startS3(),
    tempDir('vmconvoy-clients-'),
  ]);
  sim = await startSimulator({ config: FAST });
  // A real upload (parts + manifest, written the way vmconvoy writes them) for the import that completes.
  const activities = createActivities({ config: localAwsConfig(s3, { endpoint: sim.url }), qemuImg: false });
  const image = await makeImage(dir.dir, 'clients.img', 'raw', { virtualMiB: 16, randomMiB: 3 });
  const { size } = await stat(image);
  const location = { batch: 'clients', vm: 'vm-1' };
  await activities.uploadImage({ ...location, image, imageBytes: size, partSizeBytes: 1024 * 1024, concurrency: 4 });
  const manifest = await activities.writeManifest({
    ...location,
    format: 'RAW',
    imageBytes: size,
    volumeSizeGib: 8,
    partSizeBytes: 1024 * 1024,
    validUntil: new Date(Date.now() + 3600_000).toISOString(),
  });
  const manifestUrl = await getSignedUrl(
    s3.client,
    new GetObjectCommand({ Bucket: s3.bucket, Key: manifest.manifestKey }),
    { expiresIn: 3600 }
  );
  const missingManifestUrl = await getSignedUrl(
    s3.client,
    new GetObjectCommand({ Bucket: s3.bucket, Key: 'never/uploaded.xml' }),
    { expiresIn: 3600 }
  );
  const input = {
    endpoint: sim.url,
    region: 'us-east-1',
    accessKey: CREDS.accessKeyId,
    secretKey: CREDS.secretAccessKey,
    manifestUrl,
    missingManifestUrl,
    imageBytes: size,
    volumeSize: 8,
  };
  const py = await run(venv.python, ['run_conformance.py'], clientEnv(), JSON.stringify(input));
  assert.equal(py.code, 0, py.stderr);
  report = JSON.parse(py.stdout) as Report;
});

after(async () => {
  await sim?.close();
  await Promise.all([s3?.stop(), dir?.remove()]);
});

describe('boto3 (botocore signing as shipped) against botocore EC2 model', () => {
  test('every raw response of every call fits its output shape or EC2 error envelope', () => {
    assert.ok(report.responses >= 25, `only ${report.responses} responses checked`);
    for (const op of [
      'ImportInstance',
      'ImportVolume',
      'AttachVolume',
      'DescribeConversionTasks',
      'CancelConversionTask',
      'DescribeInstances',
      'DescribeVolumes',
      'CreateTags',
      'DescribeTags',
      'StartInstances',
      'StopInstances',
      'TerminateInstances',
      'DescribeInstanceStatus',
    ]) {
      assert.ok(report.operations.includes(op), `${op} was not exercised`);
    }
    assert.deepEqual(report.violations, []);
  });

  test('each scenario step and documented error behaved as EC2 does', () => {
    const failed = report.cases.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    assert.deepEqual(failed, []);
    assert.ok(report.cases.length >= 20, `${report.cases.length} cases`);
  });
});

describe('AWS CLI v1 (its own vendored botocore)', () => {
  test('describe-conversion-tasks, describe-instances, create-tags, describe-tags, describe-volumes, describe-instance-status', async () => {
    const tasks = await aws('describe-conversion-tasks');
    assert.equal(tasks.code, 0, tasks.stderr);
    const list = (
      JSON.parse(tasks.stdout) as { ConversionTasks: Array<{ State: string; ImportInstance?: { InstanceId: string } }> }
    ).ConversionTasks;
    const done = list.find((t) => t.State === 'completed' && t.ImportInstance);
    assert.ok(done, tasks.stdout);
    const instanceId = done.ImportInstance!.InstanceId;

    const instances = await aws('describe-instances', '--instance-ids', instanceId);
    assert.equal(instances.code, 0, instances.stderr);
    const inst = (
      JSON.parse(instances.stdout) as {
        Reservations: Array<{ Instances: Array<{ InstanceId: string; ImageId: string; VpcId: string }> }>;
      }
    ).Reservations[0]!.Instances[0]!;
    assert.deepEqual(
      [inst.InstanceId, /^ami-[0-9a-f]{17}$/.test(inst.ImageId), /^vpc-/.test(inst.VpcId)],
      [instanceId, true, true]
    );

    const tag = await aws('create-tags', '--resources', instanceId, '--tags', 'Key=cli,Value=v1');
    assert.equal(tag.code, 0, tag.stderr);
    const tags = await aws(
      'describe-tags',
      '--filters',
      `Name=resource-id,Values=${instanceId}`,
      'Name=key,Values=cli'
    );
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual(
      (JSON.parse(tags.stdout) as { Tags: Array<{ Key: string; Value: string }> }).Tags.map((t) => [t.Key, t.Value]),
      [['cli', 'v1']]
    );

    for (const args of [
      ['describe-volumes'],
      ['describe-instance-status', '--include-all-instances'],
      ['describe-instances', '--filters', 'Name=instance-state-name,Values=stopped,terminated'],
    ]) {
      const res = await aws(...args);
      assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
      assert.ok(res.stdout.trim().startsWith('{'), res.stdout);
    }
  });

  test('errors reach the CLI with EC2 codes: a malformed task ID, DryRun', async () => {
    const bad = await aws('describe-conversion-tasks', '--conversion-task-ids', 'bogus');
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /\(InvalidConversionTaskId\.Malformed\) when calling the DescribeConversionTasks operation/
    );
    const dry = await aws('describe-instances', '--dry-run');
    assert.notEqual(dry.code, 0);
    assert.match(
      dry.stderr,
      /\(DryRunOperation\) when calling the DescribeInstances operation: Request would have succeeded, but DryRun flag is set/
    );
  });
});
