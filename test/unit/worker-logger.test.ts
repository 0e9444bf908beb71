import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { PinoTemporalLogger, withBatchAndVm } from '../../worker/logger';

test('log lines of a VM workflow carry batch, vm and workflow id', () => {
  assert.deepEqual(withBatchAndVm({ workflowId: 'wave-a/web-01', activityType: 'uploadImage' }), {
    workflowId: 'wave-a/web-01',
    activityType: 'uploadImage',
    batch: 'wave-a',
    vm: 'web-01',
  });
  assert.deepEqual(withBatchAndVm({ workflowId: 'wave-a' }), { workflowId: 'wave-a', batch: 'wave-a' });
  assert.deepEqual(withBatchAndVm({ workflowId: 'vmconvoy-quota/aws/us-east-1' }), {
    workflowId: 'vmconvoy-quota/aws/us-east-1',
  });
});

test('the Temporal runtime logger writes one JSON object per line through pino', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = new PinoTemporalLogger(pino({ level: 'info' }, sink));
  logger.info('part uploaded', { workflowId: 'b1/db-02', part: 3 });
  logger.debug('not shown at info');
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(line.msg, 'part uploaded');
  assert.deepEqual([line.batch, line.vm, line.workflowId, line.part], ['b1', 'db-02', 'b1/db-02', 3]);
});
