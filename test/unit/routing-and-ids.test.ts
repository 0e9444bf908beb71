/**
 * Routing and IDs have one home each (common/task-queues.ts, common/workflow-ids.ts): the worker registers
 * on each queue exactly the activities the workflows may schedule there, and IDs round-trip.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActivities } from '../../activities';
import { ACTIVITIES_BY_QUEUE, activitiesFor, awsApiTaskQueueOf, controlTaskQueueOf } from '../../common/task-queues';
import {
  fleetWorkflowId,
  parseVmWorkflowId,
  quotaWorkflowId,
  rollbackWorkflowId,
  vmWorkflowId,
} from '../../common/workflow-ids';

const config = {
  region: 'us-east-1',
  bucket: 'stage',
  keyPrefix: 'vmconvoy/',
  maxAttempts: 1,
  accessKeyId: 'k',
  secretAccessKey: 's',
};

describe('task-queue routing', () => {
  it('every activity a queue is said to serve exists, and activitiesFor hands the worker exactly those', () => {
    const activities = createActivities({ config, qemuImg: false });
    for (const [role, names] of Object.entries(ACTIVITIES_BY_QUEUE)) {
      for (const name of names)
        assert.equal(typeof (activities as Record<string, unknown>)[name], 'function', `${role}: ${name}`);
    }
    const api = activitiesFor('awsApi', activities);
    assert.deepEqual(Object.keys(api).sort(), [
      'attachDataVolumes',
      'cleanupDataVolumes',
      'cleanupVm',
      'describeConversion',
      'importInstance',
      'importVolume',
      'onlineChecks',
      'resolveAwsAccount',
      'rollbackVm',
      'scanRollback',
      'validateInstance',
    ]);
    assert.equal(api.importInstance, activities.importInstance);
    assert.deepEqual(Object.keys(activitiesFor('upload', activities)).sort(), [
      'checkVmScratch',
      'convertImage',
      'discardScratch',
      'preflightDataDisk',
      'preflightImage',
      'uploadImage',
    ]);
    assert.deepEqual(Object.keys(activitiesFor('control', activities)).sort(), [
      'loadInventoryPage',
      'sendNotification',
      'vmWorkflowStates',
      'workflowRunStates',
      'writeBatchReport',
    ]);
  });

  it('derives the API and control queues from the main one unless named', () => {
    assert.equal(awsApiTaskQueueOf({ taskQueue: 'mig' }), 'mig-aws-api');
    assert.equal(awsApiTaskQueueOf({ taskQueue: 'mig', awsApiTaskQueue: 'budget-eu' }), 'budget-eu');
    assert.equal(controlTaskQueueOf({ taskQueue: 'mig' }), 'mig-control');
  });
});

describe('workflow IDs', () => {
  it('builds the IDs running workflows already have', () => {
    assert.equal(fleetWorkflowId('wave-1'), 'wave-1');
    assert.equal(vmWorkflowId('wave-1', 'db-01'), 'wave-1/db-01');
    assert.equal(quotaWorkflowId('aws', 'eu-west-1'), 'vmconvoy-quota/aws/eu-west-1');
  });

  it('reads a VM workflow ID back, also when the batch name holds a slash (VM names cannot)', () => {
    assert.deepEqual(parseVmWorkflowId('wave-1/db-01'), { batch: 'wave-1', vm: 'db-01' });
    assert.deepEqual(parseVmWorkflowId('team-a/wave-1/db-01'), { batch: 'team-a/wave-1', vm: 'db-01' });
    assert.equal(parseVmWorkflowId('wave-1'), undefined);
    assert.equal(parseVmWorkflowId('vmconvoy-quota/aws/eu-west-1'), undefined);
  });

  it('names a rollback by its batch (and VM), never like a VM workflow', () => {
    assert.equal(rollbackWorkflowId('wave-1'), 'vmconvoy-rollback:wave-1');
    assert.equal(rollbackWorkflowId('wave-1', 'db-01'), 'vmconvoy-rollback:wave-1:db-01');
    assert.equal(parseVmWorkflowId(rollbackWorkflowId('wave-1', 'db-01')), undefined);
  });
});
