/**
 * The worker's Prometheus endpoint during and after real migrations: a worker process started as
 * operators start it (VMCONVOY_METRICS_ADDRESS), three VMs (one failing on purpose) under the conversion
 * quota, with the simulator throttling a third of the conversion polls. Scraped over HTTP like Prometheus would:
 * our metrics must be there with the values the run implies, next to the Temporal SDK's own.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceProcess } from '../../dev/process';
import { freePort, spawnService } from '../../dev/process';
import { REPO_ROOT } from '../../dev/services';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { partKey } from '../../common/object-keys';
import type { MigrateVmInput } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';

const IMAGE_MIB = 4;
const FAIL_MESSAGE = 'ClientError: Unsupported kernel version 2.6.18';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess | undefined;
let metricsUrl: string;

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    // Conversions of a few seconds, so the in-flight gauge is seen while they run.
    startSim({
      config: {
        speed: { conversionBytesPerSecond: 1024 ** 3, minConversionSeconds: 3, stepSeconds: 0.2, pendingPollMs: 200 },
        // Throttling on the polls only: a throttled ImportInstance or CreateTags retries on the activity's own
        // backoff (2 s doubling, one SDK attempt here), and a few in a row cost this test a minute or more.
        faults: { seed: 7, throttleRate: 0.3, actions: ['DescribeConversionTasks'] },
      },
    }),
    tempDir('vmconvoy-metrics-'),
  ]);
});
after(async () => {
  await worker?.kill();
  await Promise.all([sim?.stop(), s3?.stop(), dir?.remove()]);
  await temporal?.stop();
});

/** Prometheus text → sample name with labels → value, summed over the SDK's extra labels. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(metricsUrl);
  assert.equal(res.status, 200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, name, labels = '', value] = m;
    const keep = [...labels.matchAll(/(code|status)="([^"]*)"/g)].map(([, k, v]) => `${k}=${v}`).join(',');
    const key = keep ? `${name}{${keep}}` : name!;
    samples.set(key, (samples.get(key) ?? 0) + Number(value));
  }
  return samples;
}

const sum = (samples: Map<string, number>, prefix: string): number =>
  [...samples].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((n, [, v]) => n + v, 0);

test('the metrics endpoint shows bytes uploaded, parts retried, AWS errors by code, outcomes, conversion durations and slots in flight', async () => {
  const taskQueue = uniqueTaskQueue('metrics');
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  worker = await spawnService({
    name: 'worker',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(REPO_ROOT, 'worker', 'main.ts')],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      // A worker reads images only under its roots (it refuses to start without them).
      VMCONVOY_IMAGE_ROOTS: dir.dir,
      VMCONVOY_TASK_QUEUE: taskQueue,
      AWS_REGION: s3.region,
      AWS_ENDPOINT_URL_EC2: sim.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      VMCONVOY_BUCKET: s3.bucket,
      VMCONVOY_METRICS_ADDRESS: `127.0.0.1:${port}`,
      // One SDK attempt per call, so every throttled answer reaches the activity and is counted.
      AWS_MAX_ATTEMPTS: '1',
    },
    readyWhen: (line) => line.includes('vmconvoy worker started'),
    readyTimeoutMs: 60_000,
  });

  // A stale object where m-ok-1's first part goes (a damaged earlier upload): replaced, and counted as retried.
  await s3.client.send(
    new PutObjectCommand({
      Bucket: s3.bucket,
      Key: partKey('vmconvoy/', { batch: 'metrics', vm: 'm-ok-1', namespace: temporal.namespace }, 0),
      Body: 'stale',
    })
  );
  const names = ['m-ok-1', 'm-ok-2', 'm-fails'];
  const handles = await Promise.all(
    names.map(async (name) => {
      const image = await makeImage(dir.dir, `${name}.raw`, 'raw', {
        virtualMiB: IMAGE_MIB,
        randomMiB: 1,
        marker: name === 'm-fails' ? `VMCONVOY_SIM_FAIL=${FAIL_MESSAGE}` : undefined,
      });
      const input: MigrateVmInput = {
        batch: 'metrics',
        spec: vmSpecSchema.parse({
          ...RANDOM_IMAGE_ROW,
          name,
          image,
          architecture: 'x86_64',
          instanceType: 't2.micro',
        }),
        settings: {
          ...DEFAULT_SETTINGS,
          // Byte-for-byte uploads: the metric is compared with the images' length.
          uploadFormat: 'as-is',
          partSizeBytes: 1024 * 1024,
          pollInitialSeconds: 0.5,
          pollMaxSeconds: 1,
          deadlineSeconds: 600,
        },
        quota: { workflowId: `vmconvoy-quota/${taskQueue}`, limit: 5 },
      };
      return temporal.client.workflow.start('migrateVmWorkflow', {
        taskQueue,
        workflowId: `metrics/${name}`,
        args: [input],
      });
    })
  );

  // During the run: conversion slots held.
  let peakInFlight = 0;
  const results = Promise.allSettled(handles.map((h) => h.result()));
  let settled = false;
  void results.then(() => (settled = true));
  while (!settled) {
    peakInFlight = Math.max(peakInFlight, sum(await scrape(), 'vmconvoy_conversions_in_flight'));
    await new Promise((r) => setTimeout(r, 250));
  }
  const outcomes = await results;
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'fulfilled', 'rejected']
  );

  // Metrics are exported on an interval: wait for the final counts.
  const imageBytes = IMAGE_MIB * 1024 * 1024;
  let samples = await scrape();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && sum(samples, 'vmconvoy_vm_outcomes') < 3) {
    await new Promise((r) => setTimeout(r, 500));
    samples = await scrape();
  }
  console.log(
    `[metrics] ${[...samples]
      .filter(([k]) => k.startsWith('vmconvoy_'))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}; peak in flight ${peakInFlight}`
  );

  assert.ok(peakInFlight >= 1, 'conversion slots were seen held during the run');
  assert.equal(sum(samples, 'vmconvoy_bytes_uploaded'), 3 * imageBytes, 'every image byte counted once');
  assert.equal(sum(samples, 'vmconvoy_parts_retried'), 1, 'the stale part was uploaded again');
  assert.ok(
    (samples.get('vmconvoy_aws_errors{code=RequestLimitExceeded}') ?? 0) > 0,
    'throttling counted by its AWS code'
  );
  assert.equal(samples.get('vmconvoy_vm_outcomes{status=Completed}'), 2);
  assert.equal(samples.get('vmconvoy_vm_outcomes{status=Failed}'), 1);
  assert.ok(sum(samples, 'vmconvoy_conversion_duration_seconds_count') >= 2, 'a conversion duration per completed VM');
  assert.ok(
    sum(samples, 'temporal_activity_execution_latency_count') > 0 ||
      sum(samples, 'temporal_activity_execution_latency_seconds_count') > 0,
    "the SDK's own metrics are exported too"
  );
});
