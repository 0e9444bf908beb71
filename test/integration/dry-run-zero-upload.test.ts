/**
 * `start --dry-run` costs nothing (issue 18): a 20-VM inventory goes through pre-flight, the online checks
 * and ImportInstance with DryRun for every VM, and the workers send not one byte to S3. Counted at the wire:
 * the workers' S3 endpoint is a proxy that records every PUT (test/helpers/counting-proxy.ts), so an upload
 * cannot pass unseen, whatever the uploader believes. The simulator holds no conversion task.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { startCommand } from '../../client/commands/start';
import { configSchema } from '../../common/config';
import { awsApiTaskQueueOf, controlTaskQueueOf } from '../../common/task-queues';
import { createWorkers } from '../../worker/create-worker';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage } from '../helpers/images';
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

const VMS = 20;

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: { dir: string; remove(): Promise<void> };
let workers: Worker[];
let runs: Promise<void>[];
let taskQueue: string;

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([startTemporal(), startS3(), startSim(), tempDir('vmconvoy-dry-')]);
  proxy = await startCountingProxy(s3.endpoint);
  taskQueue = uniqueTaskQueue('dry-run');
  workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    // The fleet on its control queue, the EC2 calls on theirs: as `start` routes them.
    controlTaskQueue: controlTaskQueueOf({ taskQueue }),
    awsApiTaskQueue: awsApiTaskQueueOf({ taskQueue }),
    aws: { ...localAwsConfig(s3, sim), s3Endpoint: proxy.endpoint },
    workflowBundle: await workflowBundle(),
  });
  runs = workers.map((w) => w.run());
});

after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(runs ?? []);
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), images?.remove()]);
  await temporal?.stop();
});

test(`a dry run of ${VMS} VMs checks every VM with EC2 and sends 0 bytes to S3`, { timeout: 10 * 60_000 }, async () => {
  const lines = ['name,image,format,architecture,instance_type,subnet_id,security_groups,inspection'];
  for (let i = 0; i < VMS; i++) {
    const name = `dry-${String(i).padStart(2, '0')}`;
    const image = await makeImage(images.dir, `${name}.raw`, 'raw', { virtualMiB: 16, randomMiB: 4 });
    // The examples' subnet and groups: in the simulator's default network.
    lines.push(`${name},${image},RAW,x86_64,t2.medium,subnet-0a1b2c3d,web;ssh,skip`);
  }
  const csv = path.join(images.dir, 'inventory.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  const batch = `dry-${Date.now().toString(36)}`;
  // The CLI stores the inventory straight into S3; everything the workers send passes the proxy.
  const config = configSchema.parse({ aws: localAwsConfig(s3, sim), temporal: { taskQueue } });
  const importsBefore = (await sim.state()).calls.ImportInstance ?? 0;
  proxy.reset();

  const started = await startCommand(csv, { batch, dryRun: true, maxUploads: 4 }, config, () =>
    Promise.resolve(temporal.client)
  );
  assert.ok(started.ok, JSON.stringify(started));
  await temporal.client.workflow.getHandle(batch).result();

  const state = await sim.state();
  assert.deepEqual(
    proxy.puts().map((p) => `${p.path} ${p.bytes} B`),
    [],
    'no part, manifest or marker was sent'
  );
  assert.equal(proxy.putBytes(), 0);
  assert.ok(proxy.requestTimes().length > 0, 'the workers did use S3 through the proxy (the inventory pages)');
  assert.equal(state.tasks.filter((t) => t.manifestUrl.includes(`/${batch}/`)).length, 0, 'no conversion task');
  // Every VM asked EC2 (ImportInstance with DryRun), and the CLI once before starting.
  assert.equal((state.calls.ImportInstance ?? 0) - importsBefore, VMS + 1);
  assert.ok((state.calls.DescribeSubnets ?? 0) >= VMS, 'each VM checked its subnet');
});
