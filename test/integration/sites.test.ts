/**
 * Sites (issue 21): the inventory's `site` column routes a VM's pre-flight and upload to that site's task
 * queue, served by `vmconvoy worker --site NAME` (or VMCONVOY_SITE) with the site's own image roots. Real
 * worker processes, as an operator starts them: one shared worker (no site; image roots holding only the
 * site-less VM's image) and one per site, each seeing only its site's images. A VM of a site with no
 * worker waits, visibly (`start` warns, `status` says so), and completes once a worker of its site starts.
 * Which worker ran each pre-flight and upload is read from the histories (the worker identity names the site).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { temporal as proto } from '@temporalio/proto';
import type { ServiceProcess } from '../../dev/process';
import { activityQueueHasPollers } from '../../client/queue-pollers';
import { siteTaskQueueOf } from '../../common/task-queues';
import { vmWorkflowId } from '../../common/workflow-ids';
import { recordHistory } from '../helpers/histories';
import { makeImage } from '../helpers/images';
import type { TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir, uniqueTaskQueue } from '../helpers/testbed';
import { baseEnv, eventually, runCli, spawnCliWorker } from '../e2e/run-cli';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let env: NodeJS.ProcessEnv;
let taskQueue: string;
const workers: ServiceProcess[] = [];
const FAST = { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 };
const EventType = proto.api.enums.v1.EventType;

/** VM → site ('' = none), and the folder its image is in (each worker sees only its own folder). */
const VMS: Array<[vm: string, site: string]> = [
  ['a-1', 'dc1'],
  ['a-2', 'dc1'],
  ['b-1', 'dc2'],
  ['b-2', 'dc2'],
  ['c-1', 'dc3'],
  ['n-1', ''],
];
const folderOf = (site: string): string => path.join(dir.dir, site || 'shared');

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: FAST } }),
    tempDir('vmconvoy-sites-'),
  ]);
  taskQueue = uniqueTaskQueue('sites');
  env = baseEnv({
    TEMPORAL_ADDRESS: temporal.address,
    VMCONVOY_TASK_QUEUE: taskQueue,
    AWS_REGION: s3.region,
    AWS_ENDPOINT_URL_EC2: sim.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    VMCONVOY_BUCKET: s3.bucket,
    VMCONVOY_ENV_FILE: path.join(dir.dir, 'no-env.json'),
    // The CLI validates every image (it runs here, where all folders are visible).
    VMCONVOY_IMAGE_ROOTS: dir.dir,
  });
  for (const site of ['dc1', 'dc2', 'dc3', '']) await mkdir(folderOf(site), { recursive: true });
  await Promise.all(
    VMS.map(([vm, site]) => makeImage(folderOf(site), `${vm}.raw`, 'raw', { virtualMiB: 8, randomMiB: 1 }))
  );
  // The shared worker: workflows and the shared queues; it can read only the site-less VM's folder.
  workers.push(await worker('shared', [], { VMCONVOY_IMAGE_ROOTS: folderOf('') }));
  // Site workers, one by flag and one by environment, each with its own image roots.
  workers.push(await worker('dc1', ['--site', 'dc1'], { VMCONVOY_IMAGE_ROOTS: folderOf('dc1') }));
  workers.push(await worker('dc2', [], { VMCONVOY_SITE: 'dc2', VMCONVOY_IMAGE_ROOTS: folderOf('dc2') }));
});

after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

function worker(name: string, args: string[], extra: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  return spawnCliWorker(env, dir.dir, { name, args, extraEnv: extra });
}

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

interface StatusJson {
  state: string;
  vms: Array<{ name: string; phase: string; site?: string; waiting?: string; error: string | null }>;
}
async function status(batch: string): Promise<StatusJson> {
  const run = await vmconvoy('status', batch, '--json');
  assert.ok(run.code === 0 || run.code === 2, run.stderr);
  return JSON.parse(run.stdout) as StatusJson;
}

/** The task queue and the worker identity of each activity of a VM workflow, by activity type. */
async function activityRuns(batch: string, vm: string): Promise<Map<string, { queue: string; identity: string }>> {
  const history = await temporal.client.workflow.getHandle(vmWorkflowId(batch, vm)).fetchHistory();
  const scheduled = new Map<number, { type: string; queue: string }>();
  const runs = new Map<string, { queue: string; identity: string }>();
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && a)
      scheduled.set(Number(e.eventId), { type: a.activityType?.name ?? '', queue: a.taskQueue?.name ?? '' });
    const s = e.activityTaskStartedEventAttributes;
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && s) {
      const of = scheduled.get(Number(s.scheduledEventId));
      if (of) runs.set(of.type, { queue: of.queue, identity: s.identity ?? '' });
    }
  }
  return runs;
}

test('each VM pre-flights and uploads on its own site worker; a site without a worker waits visibly, then completes', async () => {
  const batch = `sites-${Date.now().toString(36)}`;
  // The site workers poll before the batch starts, so `start` warns about dc3 only.
  for (const site of ['dc1', 'dc2'])
    await eventually(`a poller on site ${site}`, async () =>
      (await activityQueueHasPollers(temporal.client, siteTaskQueueOf(taskQueue, site))) ? true : undefined
    );
  const csv = path.join(dir.dir, 'inventory.csv');
  await writeFile(
    csv,
    ['name,image,architecture,instance_type,site,inspection']
      .concat(VMS.map(([vm, site]) => `${vm},${path.join(folderOf(site), `${vm}.raw`)},x86_64,t2.medium,${site},skip`))
      .join('\n') + '\n'
  );
  const started = await vmconvoy('start', csv, '--batch', batch, '--max-uploads', '6', '--json');
  assert.equal(started.code, 0, started.stdout + started.stderr);
  const warnings = (JSON.parse(started.stdout) as { warnings: string[] }).warnings;
  assert.deepEqual(
    warnings.filter((w) => w.includes('site')).map((w) => /site "([^"]+)"/.exec(w)?.[1]),
    ['dc3'],
    warnings.join('\n')
  );
  assert.match(warnings.join('\n'), /its 1 VM will wait at pre-flight .*vmconvoy worker --site dc3/);

  // Every VM with a worker completes; the dc3 VM waits at pre-flight, and status says why.
  const waiting = await eventually(
    'the served VMs completed and the dc3 VM waiting',
    async () => {
      const s = await status(batch);
      const byName = new Map(s.vms.map((v) => [v.name, v]));
      assert.ok(![...byName.values()].some((v) => v.phase === 'Failed'), JSON.stringify(s.vms));
      const served = VMS.filter(([, site]) => site !== 'dc3').every(([vm]) => byName.get(vm)?.phase === 'Completed');
      return served && byName.get('c-1')?.waiting ? s : undefined;
    },
    240_000,
    1_000
  );
  const c1 = waiting.vms.find((v) => v.name === 'c-1')!;
  assert.equal(c1.phase, 'Preflight');
  assert.equal(c1.site, 'dc3');
  assert.equal(c1.waiting, 'waiting for a worker of site dc3');
  assert.equal(waiting.state, 'running');
  const text = await vmconvoy('status', batch);
  assert.match(text.stdout, /waiting for a worker of site dc3/);

  // A worker of dc3 starts: the VM goes on and the batch completes.
  workers.push(await worker('dc3', ['--site', 'dc3'], { VMCONVOY_IMAGE_ROOTS: folderOf('dc3') }));
  const done = await eventually(
    'the batch completed',
    async () => {
      const s = await status(batch);
      return s.state === 'completed' || s.state === 'failed' ? s : undefined;
    },
    240_000,
    1_000
  );
  assert.equal(done.state, 'completed', JSON.stringify(done.vms));
  assert.ok(done.vms.every((v) => v.phase === 'Completed' && !v.waiting));
  // Replayed by test/unit/replay.test.ts: a VM of a site that waited for its worker.
  await recordHistory(
    temporal.client.workflow.getHandle(vmWorkflowId(batch, 'c-1')),
    'migrateVmWorkflow--site-waited-for-worker'
  );

  // Each VM's pre-flight and upload ran on its site's queue and on that site's worker.
  for (const [vm, site] of VMS) {
    const runs = await activityRuns(batch, vm);
    for (const activity of ['preflightImage', 'uploadImage']) {
      const run = runs.get(activity);
      assert.ok(run, `${vm}: ${activity} ran`);
      assert.equal(run.queue, site ? siteTaskQueueOf(taskQueue, site) : taskQueue, `${vm}: ${activity}'s queue`);
      if (site) assert.match(run.identity, new RegExp(` site=${site}$`), `${vm}: ${activity} ran on ${run.identity}`);
      else assert.doesNotMatch(run.identity, /site=/, `${vm}: ${activity} ran on the shared worker`);
    }
    // The EC2 calls stay on the shared worker, whatever the site.
    assert.doesNotMatch(runs.get('importInstance')?.identity ?? 'missing', /site=|missing/, `${vm}: importInstance`);
  }
});
