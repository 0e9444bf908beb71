/**
 * The reduced chaos scenario, in `npm test` (the full one is `npm run test:chaos`): 10 VMs in two waves
 * on the local environment while the worker is SIGKILLed during an upload, a boot check and a conversion
 * wait, and the simulator, the Temporal dev server and the S3 server are each restarted, with 20 %
 * throttling, 2 % 500s, lost ImportInstance answers and new resources listed 2-6 s late. Every check of
 * test/chaos/checks.ts must find nothing. (The forced boot-check failure and its `retry` are in the full run.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REDUCED } from './plans';
import { formatReport, runChaos } from './scenario';

test('a fleet survives worker kills, server restarts and late listings: expected outcomes, one task and one instance per VM, none running, every slot back, nothing left, bounded re-upload, no secret', async () => {
  const report = await runChaos({
    ...REDUCED,
    seed: Number(process.env.VMCONVOY_CHAOS_SEED ?? 1),
    log: (line) => console.log(`[chaos] ${line}`),
  });
  for (const line of formatReport(report)) console.log(`[chaos] ${line}`);
  assert.equal(report.disruptions.length, REDUCED.plan.length, 'every planned disruption happened');
  assert.ok(
    report.disruptions.some((d) => d.kind === 'kill-worker' && d.during === 'uploading' && d.partsInFlight > 0),
    'a kill hit parts in flight'
  );
  assert.ok(
    report.disruptions.some((d) => d.kind === 'kill-worker' && d.during === 'boot-check' && d.momentSeen),
    'a kill hit a boot check (an instance between StartInstances and StopInstances)'
  );
  assert.ok(report.bootCheckVms >= 3, 'boot-check VMs in the fleet');
  assert.ok(report.secrets.histories > REDUCED.vms, 'the secret scan read every VM history');
  assert.deepEqual(report.problems, []);
});
