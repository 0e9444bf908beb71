/**
 * The AWS API request budget: every EC2-calling activity runs on the AWS API task queue, and the Temporal
 * server's rate limit on that queue caps those activities, of all workers and batches together. A
 * DescribeConversionTasks poll, the bulk of a long migration's calls, is one activity and one request;
 * ImportInstance (lookup, then import) and validation make a few requests each. The same
 * six conversions run twice against the simulator, behind a proxy that timestamps every EC2 request:
 * unbudgeted (the polling outruns the budget: proof the measurement can fail), then with a budget of
 * 1/s set the way `vmconvoy start --max-api-rate` and `set-limits` set it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { getAwsApiBudget, setAwsApiBudget } from '../../client/aws-api-budget';
import { createWorkers } from '../../worker/create-worker';
import type { MigrateVmInput, MigrateVmResult, MigrationSettings } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import type { CountingProxy } from '../helpers/counting-proxy';
import { startCountingProxy } from '../helpers/counting-proxy';
import { makeImage, RANDOM_IMAGE_ROW } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';

const VMS = 6;
const BUDGET = 1;
const WINDOW_MS = 5000;
// Conversions last about 8 s whatever the size, so each VM polls for a while.
const SIM = {
  speed: { conversionBytesPerSecond: 1024 ** 3, minConversionSeconds: 8, stepSeconds: 0.2, pendingPollMs: 200 },
  limits: { maxActiveConversions: 20 },
};
// Poll every second: six VMs want about 6 requests/s.
const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 2 * 1024 * 1024,
  pollInitialSeconds: 1,
  pollMaxSeconds: 1,
  pollBackoff: 1,
  deadlineSeconds: 600,
};

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let proxy: CountingProxy;
let images: { dir: string; remove(): Promise<void> };
let taskQueue: string;
let apiQueue: string;
let workers: Worker[];
let running: Promise<unknown>;

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: SIM }),
    tempDir('vmconvoy-budget-'),
  ]);
  proxy = await startCountingProxy(sim.endpoint);
  taskQueue = uniqueTaskQueue('budget');
  apiQueue = `${taskQueue}-aws-api`;
  workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    awsApiTaskQueue: apiQueue,
    aws: localAwsConfig(s3, { endpoint: proxy.endpoint }),
    workflowBundle: await workflowBundle(),
  });
  running = Promise.all(workers.map((w) => w.run()));
});

after(async () => {
  for (const w of workers ?? []) w.shutdown();
  await running;
  await Promise.all([proxy?.close(), sim?.stop(), s3?.stop(), images?.remove()]);
  await temporal?.stop();
});

/** Most events in any WINDOW_MS window of sorted times. */
function peakPerWindow(times: number[]): number {
  let peak = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= WINDOW_MS) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

interface Run {
  /** Start times of the activities on the AWS API queue (what the server's rate limit counts). */
  activityPeak: number;
  activities: number;
  /** EC2 requests seen at the wire: one to four per activity (ImportInstance looks up before it imports). */
  requestPeak: number;
  requests: number;
  seconds: number;
}

/** Runs VMS VMs to completion and measures the AWS API activities and the EC2 requests they made. */
async function runVms(label: string): Promise<Run> {
  const image = await makeImage(images.dir, `${label}.raw`, 'raw', { virtualMiB: 4, randomMiB: 1 });
  proxy.reset();
  const started = Date.now();
  const handles = await Promise.all(
    Array.from({ length: VMS }, (_, i) => {
      const input: MigrateVmInput = {
        batch: label,
        spec: vmSpecSchema.parse({
          ...RANDOM_IMAGE_ROW,
          name: `vm${i}`,
          image,
          architecture: 'x86_64',
          instanceType: 't2.micro',
        }),
        settings: { ...SETTINGS, awsApiTaskQueue: apiQueue },
      };
      return temporal.client.workflow.start('migrateVmWorkflow', {
        taskQueue,
        workflowId: `${label}/vm${i}`,
        args: [input],
      });
    })
  );
  const results = (await Promise.all(handles.map((h) => h.result()))) as MigrateVmResult[];
  for (const r of results) assert.equal(r.phase, 'Completed', `${label}/${r.vm} completed`);
  const starts: number[] = [];
  for (const handle of handles) {
    const events = (await handle.fetchHistory()).events ?? [];
    const onApiQueue = new Set<string>();
    for (const e of events) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.taskQueue?.name === apiQueue) onApiQueue.add(String(e.eventId));
      const start = e.activityTaskStartedEventAttributes;
      if (start && onApiQueue.has(String(start.scheduledEventId)) && e.eventTime?.seconds != null) {
        starts.push(Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6));
      }
    }
  }
  starts.sort((a, b) => a - b);
  const requests = proxy.requestTimes().sort((a, b) => a - b);
  return {
    activityPeak: peakPerWindow(starts),
    activities: starts.length,
    requestPeak: peakPerWindow(requests),
    requests: requests.length,
    seconds: (Date.now() - started) / 1000,
  };
}

const describeRun = (r: Run): string =>
  `${r.activities} AWS API activities (peak ${r.activityPeak} per ${WINDOW_MS / 1000} s), ${r.requests} EC2 requests (peak ${r.requestPeak}) in ${r.seconds.toFixed(1)} s`;

test('a budget on the AWS API task queue caps the EC2 calls of every VM together, and is removable', async () => {
  assert.equal(await getAwsApiBudget(temporal.client, apiQueue), undefined, 'no budget until one is set');
  const free = await runVms('unbudgeted');
  console.log(`[budget] unbudgeted: ${describeRun(free)}`);
  const allowed = BUDGET * (WINDOW_MS / 1000);
  // Six VMs polling every second: well above what the budget allows in the same window.
  assert.ok(free.activityPeak > allowed + 3, `unbudgeted polling should outrun the budget (peak ${free.activityPeak})`);

  assert.equal(await setAwsApiBudget(temporal.client, apiQueue, BUDGET, 'test'), BUDGET);
  const capped = await runVms('budgeted');
  console.log(`[budget] ${BUDGET} activity/s: ${describeRun(capped)}`);
  // The server hands tasks out in small bursts (seen: about 4 every 4 s at 1/s), so allow one burst's
  // slack over the window; unbudgeted the same VMs start several times more.
  assert.ok(capped.activityPeak <= 2 * allowed, `budgeted peak ${capped.activityPeak} exceeds ${BUDGET}/s`);
  assert.ok(
    capped.requestPeak < free.requestPeak / 2,
    `EC2 request peak ${capped.requestPeak} not well below unbudgeted ${free.requestPeak}`
  );

  assert.equal(
    await setAwsApiBudget(temporal.client, apiQueue, 'default', 'test done'),
    undefined,
    'default removes the budget'
  );
});
