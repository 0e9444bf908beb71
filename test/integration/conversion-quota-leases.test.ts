/**
 * Conversion slots as leases: a VM that finds a slot free holds it from the quota's answer, with no grant
 * signal back, so the one quota workflow of an account+region handles two messages per VM (the request and
 * the release) instead of three, and the VM takes no extra workflow task for a grant. Counted from the
 * histories, not timed. A VM that finds no slot free still waits in line and is granted by signal.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { createSlotActivities } from '../../activities/conversion-slot';
import { workflowRunStates } from '../../activities/fleet';
import { quotaStateQuery } from '../../workflows/messages';
import { letGoSignal } from '../helpers/test-workflows';
import type { TestTemporal } from '../helpers/testbed';
import { startTemporal, uniqueTaskQueue, workflowBundle } from '../helpers/testbed';
import { until } from '../helpers/wait';

const EventType = proto.api.enums.v1.EventType;
let temporal: TestTemporal;

before(async () => {
  temporal = await startTemporal();
});
after(async () => {
  await temporal?.stop();
});

async function quotaWorker(taskQueue: string): Promise<Worker> {
  return Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(path.join(__dirname, '..', 'helpers', 'test-workflows.ts')),
    activities: { ...createSlotActivities(), workflowRunStates },
  });
}

/** Events of one type in a workflow's history (every run of the ID is one run here: no continue-as-new). */
async function eventsOf(handle: WorkflowHandle, type: proto.api.enums.v1.EventType) {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.eventType === type);
}

/** Messages the quota took in (signals, updates) and sent (grant signals), read from its history. */
async function quotaMessages(handle: WorkflowHandle) {
  const history = await handle.fetchHistory();
  const count = (type: proto.api.enums.v1.EventType): number =>
    (history.events ?? []).filter((e) => e.eventType === type).length;
  return {
    signalsIn: count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
    updatesIn: count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
    grantsSent: count(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED),
    workflowTasks: count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
  };
}

/** slotGranted signals a holder received. */
async function grantSignals(holder: WorkflowHandle): Promise<number> {
  const signals = await eventsOf(holder, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
  return signals.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'slotGranted').length;
}

async function letGo(holder: WorkflowHandle): Promise<boolean> {
  await holder.signal(letGoSignal);
  return (await holder.result()) as boolean;
}

test('N VMs that find a slot free hold it from the answer: no grant signal, two messages per VM through the quota', async (t) => {
  const taskQueue = uniqueTaskQueue('quota-lease');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const vms = 5;
    const quotaId = `vmconvoy-quota/${taskQueue}/us-east-1`;
    const quota = { workflowId: quotaId, limit: vms };
    const handle = temporal.client.workflow.getHandle(quotaId);
    const holders: WorkflowHandle[] = [];
    for (let i = 0; i < vms; i++) {
      holders.push(
        await temporal.client.workflow.start('slotHolderWorkflow', {
          taskQueue,
          workflowId: `${taskQueue}/vm-${i}`,
          args: [quota],
        })
      );
      // Each holds its slot before the next asks: every one of them found a slot free.
      await until(
        () => handle.query(quotaStateQuery).catch(() => null),
        (s) => s !== null && s.holders.length === i + 1
      );
    }
    for (const holder of holders) assert.equal(await letGo(holder), true);
    await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.length === 0 && s.waiting.length === 0
    );

    const messages = await quotaMessages(handle);
    t.diagnostic(`quota, ${vms} VMs: ${JSON.stringify(messages)}`);
    assert.equal(messages.grantsSent, 0, 'a free slot is the answer to the request, not a signal back');
    assert.equal(messages.updatesIn, vms, 'one request per VM');
    assert.equal(messages.signalsIn, vms, 'one release per VM');
    assert.equal(messages.signalsIn + messages.updatesIn + messages.grantsSent, 2 * vms, 'two messages per VM');
    for (const holder of holders) assert.equal(await grantSignals(holder), 0, `${holder.workflowId} got no grant`);
    await handle.terminate('test done');
  });
});

test('with every slot taken a VM still waits in line and is granted by signal; never more holders than the limit', async () => {
  const taskQueue = uniqueTaskQueue('quota-lease-full');
  const worker = await quotaWorker(taskQueue);
  await worker.runUntil(async () => {
    const quotaId = `vmconvoy-quota/${taskQueue}/us-east-1`;
    const quota = { workflowId: quotaId, limit: 2 };
    const handle = temporal.client.workflow.getHandle(quotaId);
    const holders: WorkflowHandle[] = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      holders.push(
        await temporal.client.workflow.start('slotHolderWorkflow', {
          taskQueue,
          workflowId: `${taskQueue}/${name}`,
          args: [quota],
        })
      );
      await until(
        () => handle.query(quotaStateQuery).catch(() => null),
        (s) => s !== null && s.holders.length + s.waiting.length === holders.length
      );
    }
    let state = await handle.query(quotaStateQuery);
    assert.deepEqual(state.holders, [`${taskQueue}/a`, `${taskQueue}/b`]);
    assert.deepEqual(state.waiting, [`${taskQueue}/c`, `${taskQueue}/d`]);

    // In request order: a's slot goes to c, b's to d, each by a grant signal.
    assert.equal(await letGo(holders[0]!), true);
    state = await until(
      () => handle.query(quotaStateQuery),
      (s) => s.holders.includes(`${taskQueue}/c`)
    );
    assert.deepEqual(state.holders, [`${taskQueue}/b`, `${taskQueue}/c`], 'never more than the limit');
    assert.deepEqual(state.waiting, [`${taskQueue}/d`]);
    for (const holder of holders.slice(1)) assert.equal(await letGo(holder), true);

    const messages = await quotaMessages(handle);
    assert.equal(messages.grantsSent, 2, 'the two VMs that waited were granted by signal');
    assert.deepEqual(
      await Promise.all(holders.map(grantSignals)),
      [0, 0, 1, 1],
      'a and b leased their slot; c and d were told by signal'
    );
    await handle.terminate('test done');
  });
});
