import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { createSlotActivities } from '../../activities/conversion-slot';
import { getConversionLimit, setConversionLimit } from '../../client/conversion-limit';
import { quotaStateQuery } from '../../workflows/messages';
import type { TestTemporal } from '../helpers/testbed';
import { startTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/testbed';
import { letGoSignal } from '../helpers/test-workflows';
import { recordHistory } from '../helpers/histories';
import { until } from '../helpers/wait';

let temporal: TestTemporal;

/** A worker running the quota workflow (and the slot holders of the test workflows) on `taskQueue`. */
async function quotaWorker(taskQueue: string): Promise<Worker> {
  return Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(path.join(__dirname, '..', 'helpers', 'test-workflows.ts')),
    activities: createSlotActivities(),
  });
}

before(async () => {
  temporal = await startTemporal();
});
after(async () => {
  await temporal?.stop();
});

test('the conversion quota grants at most `limit` slots at once, in request order, and takes a raised limit live', async () => {
  const taskQueue = uniqueTaskQueue('quota');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const quotaId = `vmconvoy-quota/${taskQueue}/us-east-1`;
    const quota = { workflowId: quotaId, limit: 1 };
    const holders = await Promise.all(
      ['a', 'b', 'c'].map((name, i) =>
        // Staggered so the request order is known.
        new Promise((r) => setTimeout(r, i * 300)).then(() =>
          temporal.client.workflow.start('slotHolderWorkflow', {
            taskQueue,
            workflowId: `${taskQueue}/${name}`,
            args: [quota],
          })
        )
      )
    );
    const handle = temporal.client.workflow.getHandle(quotaId);
    let state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length + s.waiting.length === 3
    );
    assert.deepEqual(state.holders, [`${taskQueue}/a`]);
    assert.deepEqual(state.waiting, [`${taskQueue}/b`, `${taskQueue}/c`]);

    await holders[0]!.signal(letGoSignal);
    assert.equal(await holders[0]!.result(), true);
    state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders[0] === `${taskQueue}/b`
    );
    assert.equal(state.holders.length, 1, 'never more than the limit');

    await handle.signal('setLimit', 2);
    state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 2
    );
    assert.deepEqual([...state.holders].sort(), [`${taskQueue}/b`, `${taskQueue}/c`]);

    for (const h of holders.slice(1)) await h.signal(letGoSignal);
    for (const h of holders.slice(1)) assert.equal(await h.result(), true);
    state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 0
    );
    assert.deepEqual(state.waiting, []);
    await recordHistory(handle, 'conversionQuotaWorkflow--three-holders-limit-raised');
    await handle.terminate('test done');
  });
});

test('start reads the limit in force: the batch default when no quota runs yet, unknown when nothing answers, else what was set', async () => {
  const taskQueue = uniqueTaskQueue('quota-limit');
  const quota = { workflowId: `vmconvoy-quota/${taskQueue}/us-east-1`, taskQueue };
  assert.equal(
    await getConversionLimit(temporal.client, quota.workflowId, 7),
    7,
    'absent: the first VM will start it with the batch limit'
  );
  // Set while no worker serves the queue: the signal waits, and a read gives up instead of hanging.
  await setConversionLimit(temporal.client, quota, 3);
  const started = Date.now();
  assert.equal(await getConversionLimit(temporal.client, quota.workflowId, 7), null);
  assert.ok(Date.now() - started < 15_000, `the read gave up after ${Date.now() - started} ms`);
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    assert.equal(await getConversionLimit(temporal.client, quota.workflowId, 7), 3);
    await setConversionLimit(temporal.client, quota, 4);
    assert.equal(
      await until(
        () => getConversionLimit(temporal.client, quota.workflowId, 7),
        (l) => l === 4
      ),
      4
    );
    await temporal.client.workflow.getHandle(quota.workflowId).terminate('test done');
  });
});
