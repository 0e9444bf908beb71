/**
 * The AWS API budget per account+Region (issue 20): the fairness key a VM's EC2-calling activities carry,
 * and that the profiles put it on those activities only. The server side (the per-key limit, the keys in
 * real histories) is tested in test/e2e/api-budget-accounts.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { awsApiFairnessKeyOf } from '../../common/task-queues';
import {
  awsApiOptions,
  awsApiPriority,
  fastCallOptions,
  uploadOptions,
  validationOptions,
} from '../../workflows/activity-profiles';

const window = (): number => 60_000;

test('the fairness key is <account>/<region>', () => {
  assert.equal(awsApiFairnessKeyOf({ accountId: '123456789012', region: 'eu-west-1' }), '123456789012/eu-west-1');
});

test('EC2-calling activities carry the VM key; without one they stay unkeyed', () => {
  const key = '123456789012/us-east-1';
  const keyed = awsApiOptions(
    'DescribeConversionTasks',
    { awsApiTaskQueue: 'q-aws-api', awsApiFairnessKey: key },
    window
  );
  assert.deepEqual(keyed.priority, { fairnessKey: key });
  assert.equal(keyed.taskQueue, 'q-aws-api');
  assert.equal(awsApiOptions('x', { awsApiTaskQueue: 'q-aws-api' }, window).priority, undefined);
  assert.deepEqual(
    validationOptions(600, 'q-aws-api', { deadlineSeconds: 7200, awsApiFairnessKey: key }, window).priority,
    {
      fairnessKey: key,
    }
  );
  assert.equal(validationOptions(600, 'q-aws-api', { deadlineSeconds: 7200 }, window).priority, undefined);
  assert.deepEqual(awsApiPriority({ awsApiFairnessKey: '' }), {}, 'an empty key is no key');
  // Activities off the AWS API queue are not under the EC2 budget.
  assert.equal(fastCallOptions('manifest', { deadlineSeconds: 7200 }, window).priority, undefined);
  assert.equal(uploadOptions('q', 7200, 60, window).priority, undefined);
});
