import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createSlotActivities } from '../../activities/conversion-slot';
import { workflowRunStates } from '../../activities/fleet';
import { getConversionLimit, setConversionLimit } from '../../client/conversion-limit';
import type { QuotaState } from '../../workflows/messages';
import { quotaStateQuery } from '../../workflows/messages';
import type { TestTemporal } from '../helpers/testbed';
import { startTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/testbed';
import { letGoSignal } from '../helpers/test-workflows';
import { recordHistory } from '../helpers/histories';
import { until } from '../helpers/wait';

let temporal: TestTemporal;

function nullWhenNotFound(err: unknown): null {
  if (err instanceof WorkflowNotFoundError) return null;
  throw err;
}

/**
 * A worker running the quota workflow (and the slot holders of the test workflows) on `taskQueue`, with the
 * activities the quota uses: the slot request and the check of its holders' runs.
 */
async function quotaWorker(taskQueue: string): Promise<Worker> {
  return Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(path.join(__dirname, '..', 'helpers', 'test-workflows.ts')),
    activities: { ...createSlotActivities(), workflowRunStates },
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
    const handle = temporal.client.workflow.getHandle(quotaId);
    const holders: WorkflowHandle[] = [];
    let state: QuotaState | null = null;
    for (const name of ['a', 'b', 'c']) {
      // One after another, each queued before the next asks, so the request order is known.
      holders.push(
        await temporal.client.workflow.start('slotHolderWorkflow', {
          taskQueue,
          workflowId: `${taskQueue}/${name}`,
          args: [quota],
        })
      );
      state = await until(
        // The first request's activity starts the quota: until it has run, there is nothing to ask.
        () => handle.query(quotaStateQuery).catch(nullWhenNotFound),
        (s) => s !== null && s.holders.length + s.waiting.length === holders.length
      );
    }
    assert.ok(state);
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

/** How often the quota of the tests below checks its holders: short, so a test waits seconds. */
const CHECK_SECONDS = 3;
/** What a check costs on top of its interval here (an activity, two workflow tasks) on a busy machine. */
const CHECK_SLACK_MS = 4_000;

/** A quota started by the test with a short holder check (the VMs' requests then join it). */
async function startQuota(taskQueue: string) {
  const workflowId = `vmconvoy-quota/${taskQueue}/us-east-1`;
  const handle = await temporal.client.workflow.start('conversionQuotaWorkflow', {
    taskQueue,
    workflowId,
    args: [{ limit: 1, holderCheckSeconds: CHECK_SECONDS }],
  });
  return { handle, quota: { workflowId, limit: 1 } };
}

function startHolder(taskQueue: string, workflowId: string, quota: { workflowId: string; limit: number }) {
  return temporal.client.workflow.start('slotHolderWorkflow', { taskQueue, workflowId, args: [quota] });
}

/** The holder was granted its slot: told to let go, it gives the slot back and ends with `true`. */
async function letGoGranted(holder: WorkflowHandle, timeoutMs: number): Promise<boolean> {
  await holder.signal(letGoSignal);
  const timedOut = new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), timeoutMs).unref());
  const result = await Promise.race([holder.result() as Promise<boolean>, timedOut]);
  assert.notEqual(result, 'timed out', `${holder.workflowId} was not granted a slot within ${timeoutMs} ms`);
  return result === true;
}

test('a VM terminated while holding the only slot: its retry (a new run, same ID) gets the slot at once and the whole limit is in force again', async (t) => {
  const taskQueue = uniqueTaskQueue('quota-retry');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const { handle, quota } = await startQuota(taskQueue);
    const vmId = `${taskQueue}/vm`;
    const first = await startHolder(taskQueue, vmId, quota);
    await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 1
    );
    await first.terminate('an operator terminated the VM');
    const terminatedAt = Date.now();

    const retried = await startHolder(taskQueue, vmId, quota);
    assert.notEqual(retried.firstExecutionRunId, first.firstExecutionRunId);
    const state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holderRuns?.some((h) => h.runId === retried.firstExecutionRunId) === true,
      { timeoutMs: CHECK_SECONDS * 1000 + CHECK_SLACK_MS }
    );
    t.diagnostic(`retried run granted ${Date.now() - terminatedAt} ms after the termination`);
    assert.deepEqual(
      state.holderRuns,
      [{ workflowId: vmId, runId: retried.firstExecutionRunId }],
      'the old run holds nothing'
    );
    assert.deepEqual(state.waiting, []);
    assert.equal(await letGoGranted(retried, CHECK_SECONDS * 1000 + CHECK_SLACK_MS), true);

    // The limit is 1 again, not 0: another VM gets the slot the moment the retried one gives it back.
    const other = await startHolder(taskQueue, `${taskQueue}/other`, quota);
    const after = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 1
    );
    assert.equal(after.limit, 1);
    assert.deepEqual(after.holders, [`${taskQueue}/other`]);
    assert.equal(await letGoGranted(other, 10_000), true);
    assert.deepEqual((await handle.query(quotaStateQuery)).holders, []);
    await recordHistory(handle, 'conversionQuotaWorkflow--holder-terminated-then-retried');
    await handle.terminate('test done');
  });
});

test('a holder terminated while another VM waits: the periodic check gives its slot to the waiting VM within one interval', async (t) => {
  const taskQueue = uniqueTaskQueue('quota-check');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const { handle, quota } = await startQuota(taskQueue);
    const holder = await startHolder(taskQueue, `${taskQueue}/a`, quota);
    await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 1
    );
    const waiter = await startHolder(taskQueue, `${taskQueue}/b`, quota);
    await until(
      () => handle.query(quotaStateQuery),
      (s) => s.waiting.length === 1
    );
    await holder.terminate('an operator terminated the VM');
    const terminatedAt = Date.now();
    const state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders[0] === `${taskQueue}/b`,
      { timeoutMs: CHECK_SECONDS * 1000 + CHECK_SLACK_MS }
    );
    const tookMs = Date.now() - terminatedAt;
    t.diagnostic(`waiting VM granted ${tookMs} ms after the holder's termination (check every ${CHECK_SECONDS} s)`);
    assert.deepEqual(state.waiting, []);
    assert.equal(state.holders.length, 1, 'never more than the limit');
    assert.equal(await letGoGranted(waiter, 10_000), true);
    await recordHistory(handle, 'conversionQuotaWorkflow--holder-terminated-waiter-granted');
    await handle.terminate('test done');
  });
});

test('a quota continued from an input without run IDs keeps its holders: the run of a listed ID that asks is granted its slot, an ID with no running run loses its own', async () => {
  const taskQueue = uniqueTaskQueue('quota-old-input');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const workflowId = `vmconvoy-quota/${taskQueue}/us-east-1`;
    const quota = { workflowId, limit: 2 };
    const vmId = `${taskQueue}/vm`;
    const gone = `${taskQueue}/gone`;
    // What a quota run from before runs were tracked continues as: workflow IDs only. `gone` never runs
    // again; the VM's next run is started after, as a `retry` whose predecessor held the slot would be.
    const handle = await temporal.client.workflow.start('conversionQuotaWorkflow', {
      taskQueue,
      workflowId,
      args: [{ limit: 2, holders: [gone, vmId], waiting: [], holderCheckSeconds: CHECK_SECONDS }],
    });
    const vm = await startHolder(taskQueue, vmId, quota);
    const other = await startHolder(taskQueue, `${taskQueue}/other`, quota);
    const state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.includes(`${taskQueue}/other`),
      { timeoutMs: CHECK_SECONDS * 1000 + CHECK_SLACK_MS }
    );
    assert.deepEqual(state.holderRuns, [
      { workflowId: vmId, runId: vm.firstExecutionRunId },
      { workflowId: `${taskQueue}/other`, runId: other.firstExecutionRunId },
    ]);
    assert.equal(await letGoGranted(vm, 10_000), true, 'the run of a listed ID is told it holds the slot');
    assert.equal(await letGoGranted(other, 10_000), true);
    assert.deepEqual((await handle.query(quotaStateQuery)).holders, []);
    await handle.terminate('test done');
  });
});
