/**
 * `vmconvoy setup` on a namespace vmconvoy has never seen: it adds the search attributes and the
 * retention, and a second run changes nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { msToTs, tsToMs } from '@temporalio/common/lib/time';
import { REPO_ROOT } from '../../dev/services';
import type { TestTemporal } from '../helpers/testbed';
import { startTemporal } from '../helpers/testbed';

let temporal: TestTemporal;
const namespace = `setup-${Date.now().toString(36)}`;

before(async () => {
  temporal = await startTemporal();
  await temporal.connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
});
after(async () => temporal?.stop());

function setup(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'vmconvoy.js'), 'setup', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: namespace,
        VMCONVOY_ENV_FILE: '/nonexistent',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test('setup registers the search attributes and the retention once, and is idempotent', async () => {
  const first = await setup('--retention-days', '45', '--json');
  assert.equal(first.code, 0, first.stderr);
  const result = JSON.parse(first.stdout) as { added: string[]; alreadyPresent: string[]; retentionDays: number };
  assert.deepEqual(result.added, ['MigrationBatch', 'MigrationVm', 'MigrationPhase']);
  assert.deepEqual(result.alreadyPresent, []);

  const attributes = await temporal.connection.operatorService.listSearchAttributes({ namespace });
  for (const name of result.added) assert.ok(name in (attributes.customAttributes ?? {}), `${name} registered`);
  const described = await temporal.connection.workflowService.describeNamespace({ namespace });
  assert.equal(tsToMs(described.config!.workflowExecutionRetentionTtl), 45 * 24 * 3600 * 1000);

  const second = await setup();
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stdout,
    new RegExp(`namespace ${namespace}: search attributes already present; retention 30 days`)
  );
});
