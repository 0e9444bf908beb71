/**
 * Payload encryption end to end: with VMCONVOY_CODEC_KEY on the worker and the CLI, the Temporal server
 * holds only ciphertext — the plain `temporal` CLI shows encrypted payloads, with no VM name or image path
 * in clear — while `vmconvoy status` (same key) still reads every VM, and the CLI without the key says
 * which variable it needs.
 */
import * as PATCH_IDS from '../../workflows/versions';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { resolveTemporalCli } from '../../dev/tools';
import { createWorkers } from '../../worker/create-worker';
import { ENCRYPTED_ENCODING, dataConverterFromEnv } from '../../common/temporal/payload-codec';
import { migrationBatchKey } from '../../workflows/search-attributes';
import type { MigrateVmInput } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';
import { baseEnv, runCli } from './run-cli';

const execFileAsync = promisify(execFile);
const KEY = randomBytes(32).toString('base64');
const VM = 'secret-payroll-db';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let workers: Worker[];
let running: Promise<unknown>;
let taskQueue: string;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: { conversionBytesPerSecond: 1024 ** 3, stepSeconds: 0.2, pendingPollMs: 200 } } }),
    tempDir('vmconvoy-codec-'),
  ]);
  taskQueue = uniqueTaskQueue('codec');
  workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws: localAwsConfig(s3, sim),
    workflowBundle: await workflowBundle(),
    dataConverter: dataConverterFromEnv({ VMCONVOY_CODEC_KEY: KEY }),
  });
  running = Promise.all(workers.map((w) => w.run()));
});
after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await running;
  await Promise.all([sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

test('with the codec, the server stores ciphertext, and vmconvoy status with the key still reads the batch', async () => {
  const batch = `codec-${Date.now().toString(36)}`;
  const image = await makeImage(dir.dir, `${VM}.raw`, 'raw', { virtualMiB: 4, randomMiB: 1 });
  const client = new Client({
    connection: temporal.client.connection,
    namespace: temporal.namespace,
    dataConverter: dataConverterFromEnv({ VMCONVOY_CODEC_KEY: KEY }),
  });
  const input: MigrateVmInput = {
    batch,
    spec: vmSpecSchema.parse({
      ...RANDOM_IMAGE_ROW,
      name: VM,
      image,
      architecture: 'x86_64',
      instanceType: 't2.micro',
    }),
    settings: {
      ...DEFAULT_SETTINGS,
      partSizeBytes: 1024 * 1024,
      pollInitialSeconds: 0.5,
      pollMaxSeconds: 1,
      deadlineSeconds: 600,
    },
  };
  const workflowId = `${batch}/${VM}`;
  const handle = await client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: [{ key: migrationBatchKey, value: batch }],
  });
  await handle.result();

  // The plain Temporal CLI: no codec, so it shows what the server stores.
  const cli = await resolveTemporalCli({ build: false });
  assert.ok(cli, 'the Temporal CLI is provisioned');
  const { stdout } = await execFileAsync(
    cli.path,
    [
      'workflow',
      'show',
      '--output',
      'json',
      '--address',
      temporal.address,
      '--namespace',
      temporal.namespace,
      '-w',
      workflowId,
    ],
    { maxBuffer: 64 * 1024 * 1024 }
  );
  // Search attributes are indexed by the server, so they are never encoded (README "Threat model"):
  // every other payload must be ciphertext.
  const encodings: string[] = [];
  // Patch markers (workflow versioning) are written by the SDK's core, not through the data converter:
  // their one payload is the patch ID, in clear, and nothing else may hide there.
  const patchIds: unknown[] = [];
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== 'object') return node;
    if ('markerName' in node && node.markerName === 'core_patch') {
      // details.patch_data holds the payload (as one payload or a list of them, depending on the printer).
      const found = JSON.stringify((node as { details?: unknown }).details ?? {}).match(/"data":"([^"]*)"/g) ?? [];
      for (const d of found)
        patchIds.push((JSON.parse(Buffer.from(d.slice(8, -1), 'base64').toString()) as { id?: unknown }).id);
      assert.ok(found.length > 0, `a patch marker with its payload: ${JSON.stringify(node)}`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'searchAttributes') continue;
      if (k === 'metadata' && v && typeof v === 'object' && 'encoding' in v)
        encodings.push(Buffer.from(String(v.encoding), 'base64').toString());
      out[k] = strip(v);
    }
    return out;
  };
  const rest = JSON.stringify(strip(JSON.parse(stdout))).replaceAll(workflowId, '');
  assert.ok(encodings.length > 5, `payloads found in the history (${encodings.length})`);
  assert.ok(
    encodings.every((e) => e === ENCRYPTED_ENCODING),
    `every payload is encrypted; saw ${[...new Set(encodings)].join(', ')}`
  );
  for (const id of patchIds)
    assert.ok(
      (Object.values(PATCH_IDS) as unknown[]).includes(id),
      `a patch marker holds only a patch ID (saw ${JSON.stringify(id)})`
    );
  assert.match(rest, /encryption-key-id/);
  // Outside the workflow ID and the search attributes, neither the VM's name nor its image path appears.
  for (const secret of [image, VM]) {
    assert.ok(
      !rest.includes(secret) && !rest.includes(Buffer.from(secret).toString('base64')),
      `${secret} is not in clear in the history`
    );
  }

  const env = baseEnv({
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    VMCONVOY_ENV_FILE: `${dir.dir}/none.json`,
  });
  const withKey = await runCli(['status', batch, '--json'], { ...env, VMCONVOY_CODEC_KEY: KEY });
  assert.equal(withKey.code, 0, withKey.stderr);
  const view = JSON.parse(withKey.stdout) as { vms: Array<{ name: string; phase: string; instanceId: string | null }> };
  assert.deepEqual(
    view.vms.map((v) => [v.name, v.phase]),
    [[VM, 'Completed']]
  );
  assert.match(view.vms[0]!.instanceId ?? '', /^i-/);

  const withoutKey = await runCli(['status', batch, '--json'], env);
  assert.notEqual(withoutKey.code, 0, 'without the key the payloads cannot be read');
  assert.match(withoutKey.stderr, /VMCONVOY_CODEC_KEY/, withoutKey.stderr);
});
