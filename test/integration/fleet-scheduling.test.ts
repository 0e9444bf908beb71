/**
 * The fleet's scheduling against the real Temporal server and a real inventory in S3, with a light
 * stand-in VM child (test/helpers/test-workflows.ts) so many VMs run in seconds: window limits, waves,
 * pause/resume, retry, canary, failure budget, relaunch.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createFleetActivities } from '../../activities/fleet';
import { inventoryKeyFor, storeInventory } from '../../common/inventory-store';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { batchReportKey } from '../../common/object-keys';
import { createSlotActivities } from '../../activities/conversion-slot';
import type { BatchReportInput } from '../../activities/batch-report';
import { writeBatchReport } from '../../activities/batch-report';
import type { FleetInput, FleetStatus, InventoryRow } from '../../common/contracts/fleet';
import {
  fleetStatusQuery,
  pauseFleetSignal,
  resumeFleetSignal,
  retryFleetUpdate,
  setLimitsUpdate,
} from '../../workflows/messages';
import type { FleetSummary } from '../../workflows/migrate-fleet';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import type { TestS3, TestTemporal } from '../helpers/testbed';
import { startS3, startTemporal, uniqueAccountId, uniqueTaskQueue, workflowBundle } from '../helpers/testbed';
import { recordHistory } from '../helpers/histories';

let temporal: TestTemporal;
let s3: TestS3;
const failuresLeft = new Map<string, number>();

before(async () => {
  [temporal, s3] = await Promise.all([startTemporal(), startS3()]);
});
after(async () => {
  await temporal?.stop();
  await s3?.stop();
});

function rows(specs: Array<{ name: string; wave?: number; uploadMs?: number; convertMs?: number }>): InventoryRow[] {
  return specs.map((s, i) => ({
    row: i,
    line: i + 2,
    spec: vmSpecSchema.parse({
      name: s.name,
      image: `/images/${s.name}.raw`,
      architecture: 'x86_64',
      instanceType: 'm5.large',
      wave: s.wave ?? 1,
      tags: { uploadMs: String(s.uploadMs ?? 300), convertMs: String(s.convertMs ?? 300) },
    }),
  }));
}

async function launch(batch: string, taskQueue: string, inventory: InventoryRow[], extra: Partial<FleetInput> = {}) {
  const inventoryKey = inventoryKeyFor('vmconvoy/', batch);
  await storeInventory(s3.client, s3.bucket, inventoryKey, inventory);
  const input: FleetInput = {
    batch,
    inventoryKey,
    total: inventory.length,
    limits: { maxUploads: 2, maxConversions: 5 },
    settings: DEFAULT_SETTINGS,
    canary: 0,
    quotaWorkflowId: `vmconvoy-quota/${taskQueue}`,
    ...extra,
  };
  return temporal.client.workflow.start('migrateFleetWorkflow', {
    taskQueue,
    workflowId: batch,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
}

async function withWorker(label: string, fn: (taskQueue: string) => Promise<void>): Promise<void> {
  const taskQueue = uniqueTaskQueue(label);
  const accountId = uniqueAccountId();
  const worker = await Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(path.join(__dirname, '..', 'helpers', 'test-workflows.ts')),
    activities: {
      ...createFleetActivities(s3.client, s3.bucket),
      ...createSlotActivities(),
      // The fleet asks the account behind each row's profile and Region (issue 20); these rows name none.
      // An account of this worker's own: quota workflows are per account and Region on the shared server.
      resolveAwsAccount: () => Promise.resolve({ accountId, region: 'us-east-1' }),
      // The fleet's last step: the batch's report into S3 (the real activity; these stand-in VMs add no rows).
      writeBatchReport: (input: BatchReportInput) =>
        writeBatchReport({ s3: s3.client, bucket: s3.bucket, keyPrefix: 'vmconvoy/' }, input),
      shouldFail: (vm: string): Promise<boolean> => {
        const left = failuresLeft.get(vm) ?? 0;
        failuresLeft.set(vm, left - 1);
        return Promise.resolve(left > 0);
      },
    },
  });
  await worker.runUntil(fn(taskQueue));
}

/** Samples the fleet status until it closes; returns every sample. */
async function sampleUntilDone(handle: {
  query: (q: typeof fleetStatusQuery) => Promise<FleetStatus>;
  result: () => Promise<unknown>;
}) {
  const samples: FleetStatus[] = [];
  let done = false;
  const result = handle.result().finally(() => (done = true));
  while (!done) {
    try {
      samples.push(await handle.query(fleetStatusQuery));
    } catch {
      // The run may be between continue-as-new runs; sample again.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { samples, summary: (await result) as FleetSummary };
}

test('a 30-VM fleet keeps uploads and in-flight VMs within limits and runs wave 2 only after wave 1', async () => {
  await withWorker('window', async (taskQueue) => {
    const inventory = rows(
      Array.from({ length: 30 }, (_, i) => ({
        name: `vm-${String(i).padStart(2, '0')}`,
        wave: i < 18 ? 1 : 2,
        uploadMs: 150,
        convertMs: 400,
      }))
    );
    const handle = await launch(`fleet-window-${taskQueue}`, taskQueue, inventory, {
      limits: { maxUploads: 3, maxConversions: 2 },
    });
    const { samples, summary } = await sampleUntilDone(handle);
    assert.deepEqual(summary, {
      batch: `fleet-window-${taskQueue}`,
      total: 30,
      completed: 30,
      failed: 0,
      cancelled: 0,
      alreadyDone: 0,
    });
    assert.ok(samples.length > 10, `sampled the fleet ${samples.length} times`);
    const waveOf = new Map(inventory.map((r) => [r.spec.name, r.spec.wave]));
    for (const s of samples) {
      assert.ok(s.uploading <= 3, `uploading ${s.uploading} > 3`);
      assert.ok(s.running.length <= 3 + 2 * 2, `in flight ${s.running.length} > 7`);
      const waves = new Set(s.running.map((n) => waveOf.get(n)));
      assert.ok(waves.size <= 1, `waves mixed: ${[...waves].join(',')}`);
    }
    assert.ok(
      samples.some((s) => s.running.length > 3),
      'the window went beyond the upload limit while VMs converted'
    );
  });
});

test('pause stops new starts, resume continues, set-limits applies live', async () => {
  await withWorker('pause', async (taskQueue) => {
    const inventory = rows(Array.from({ length: 12 }, (_, i) => ({ name: `p-${i}`, uploadMs: 200, convertMs: 200 })));
    const handle = await launch(`fleet-pause-${taskQueue}`, taskQueue, inventory, {
      limits: { maxUploads: 1, maxConversions: 1 },
    });
    await handle.signal(pauseFleetSignal, { reason: 'change window' });
    await new Promise((r) => setTimeout(r, 1500));
    const paused = await handle.query(fleetStatusQuery);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.pauseReason, 'change window');
    assert.ok(paused.started <= 3, `started ${paused.started} while paused`);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await handle.query(fleetStatusQuery)).started, paused.started, 'nothing started while paused');
    const limits = await handle.executeUpdate(setLimitsUpdate, { args: [{ maxUploads: 4 }] });
    assert.equal(limits.maxUploads, 4);
    await assert.rejects(handle.executeUpdate(setLimitsUpdate, { args: [{ maxUploads: 0 }] }), (err: Error) =>
      /maxUploads must be a whole number of at least 1/.test(String((err.cause as Error | undefined)?.message))
    );
    await handle.signal(resumeFleetSignal);
    const summary = (await handle.result()) as FleetSummary;
    assert.equal(summary.completed, 12);
    await recordHistory(handle, 'migrateFleetWorkflow--paused-resumed-limits-changed');
  });
});

test('retry re-runs only failed VMs; a relaunch never starts a completed VM twice', async () => {
  await withWorker('retry', async (taskQueue) => {
    const batch = `fleet-retry-${taskQueue}`;
    const inventory = rows([{ name: 'ok-1' }, { name: 'fail-1' }, { name: 'ok-2' }, { name: 'fail-2' }]);
    failuresLeft.set('fail-1', 1);
    failuresLeft.set('fail-2', 1);
    const handle = await launch(batch, taskQueue, inventory, { limits: { maxUploads: 4, maxConversions: 4 } });
    const first = (await handle.result()) as FleetSummary;
    assert.deepEqual([first.completed, first.failed], [2, 2]);

    // The batch ended; starting it again re-runs the failed VMs only.
    const again = await launch(batch, taskQueue, inventory, { limits: { maxUploads: 4, maxConversions: 4 } });
    const second = (await again.result()) as FleetSummary;
    assert.deepEqual([second.completed, second.failed, second.alreadyDone], [4, 0, 2]);
    const runs: string[] = [];
    for await (const wf of temporal.client.workflow.list({ query: `WorkflowId STARTS_WITH "${batch}/ok-"` }))
      runs.push(wf.workflowId);
    assert.deepEqual(runs.sort(), [`${batch}/ok-1`, `${batch}/ok-2`], 'completed VMs ran exactly once');
  });
});

test('a failed canary pauses the batch; retry after the fix lets the rest run', async () => {
  await withWorker('canary', async (taskQueue) => {
    const inventory = rows([{ name: 'c-fail' }, { name: 'c-ok' }, { name: 'rest-1' }, { name: 'rest-2' }]);
    failuresLeft.set('c-fail', 1);
    const handle = await launch(`fleet-canary-${taskQueue}`, taskQueue, inventory, {
      canary: 2,
      limits: { maxUploads: 4, maxConversions: 4 },
    });
    let status = await handle.query(fleetStatusQuery);
    for (let i = 0; i < 100 && status.state !== 'paused'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await handle.query(fleetStatusQuery);
    }
    assert.equal(status.state, 'paused');
    assert.match(status.pauseReason ?? '', /canary failed/);
    assert.equal(status.started, 2, 'nothing beyond the canary started');
    assert.equal(await handle.executeUpdate(retryFleetUpdate), 1);
    const summary = (await handle.result()) as FleetSummary;
    assert.deepEqual([summary.completed, summary.failed], [4, 0]);
    await recordHistory(handle, 'migrateFleetWorkflow--canary-failed-then-retried');
  });
});

test('the failure budget pauses the batch instead of starting more VMs', async () => {
  await withWorker('budget', async (taskQueue) => {
    const inventory = rows([
      { name: 'b-fail-1' },
      { name: 'b-fail-2' },
      { name: 'b-3' },
      { name: 'b-4' },
      { name: 'b-5' },
    ]);
    failuresLeft.set('b-fail-1', 1);
    failuresLeft.set('b-fail-2', 1);
    const handle = await launch(`fleet-budget-${taskQueue}`, taskQueue, inventory, {
      failureBudgetPercent: 30,
      limits: { maxUploads: 1, maxConversions: 1, maxInFlight: 1 },
    });
    let status = await handle.query(fleetStatusQuery);
    for (let i = 0; i < 100 && status.state !== 'paused'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await handle.query(fleetStatusQuery);
    }
    assert.equal(status.state, 'paused');
    assert.match(status.pauseReason ?? '', /failure budget exceeded/);
    assert.equal(status.started, 1, 'stopped after the first failure (100% > 30%)');
    await handle.cancel();
    await assert.rejects(handle.result(), /cancel/i);
    // A cancelled batch keeps its record in S3 too, saying it was cancelled.
    const key = batchReportKey('vmconvoy/', { batch: handle.workflowId, namespace: temporal.namespace }, 'json');
    const stored = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const report = JSON.parse(await stored.Body!.transformToString()) as { state: string; batch: string };
    assert.deepEqual([report.batch, report.state], [handle.workflowId, 'cancelled']);
  });
});
