import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { HISTORY_FIXTURES, historyFromFixture } from '../helpers/histories';
import { installQuietRuntime, workflowBundle } from '../helpers/testbed';

const fixtures = readdirSync(HISTORY_FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('recorded histories exist for the product workflows', () => {
  const types = new Set(fixtures.map((f) => f.split('--')[0]));
  for (const type of ['migrateVmWorkflow', 'migrateFleetWorkflow', 'conversionQuotaWorkflow']) {
    assert.ok(types.has(type), `no recorded history of ${type} in ${HISTORY_FIXTURES}`);
  }
});

test('every recorded history replays against the current workflow code', async () => {
  installQuietRuntime();
  const bundle = await workflowBundle();
  for (const file of fixtures) {
    const history = historyFromFixture(JSON.parse(readFileSync(path.join(HISTORY_FIXTURES, file), 'utf8')));
    await assert.doesNotReject(Worker.runReplayHistory({ workflowBundle: bundle }, history, file), `replay of ${file}`);
  }
});
