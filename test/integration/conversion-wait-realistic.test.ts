/**
 * vmconvoy's conversion wait (workflows/conversion-wait.ts: polling, back-off, deadline) against the
 * simulator's realistic timing profile, a hundred times faster (`timeScale` 0.01: the preset's 10-minute
 * overhead becomes 6 s, its 60 s progress steps 0.6 s). Real Temporal, S3 and guest disks judged by content.
 * What real EC2 does and the fast profile does not: tasks listed late, Pending while EC2 reads the image,
 * a queue of two conversions per account, coarse "Progress: N%" beside BytesConverted 0. The VMs must show
 * progress from the status message, back off while Pending, wait through the queue, and a VM whose deadline
 * comes first must fail with DeadlineExceeded and cancel its task.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { MigrateVmInput, MigrationSettings, VmStatus } from '../../common/contracts/migration';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';
import { createWorkers } from '../../worker/create-worker';
import { nextPollInterval } from '../../workflows/conversion-wait';
import { vmStatusQuery } from '../../workflows/messages';
import { GUESTS, makeGuestImage } from '../helpers/guest-images';
import type { SimState, TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import {
  localAwsConfig,
  startS3,
  startSim,
  startTemporal,
  tempDir,
  uniqueTaskQueue,
  workflowBundle,
} from '../helpers/testbed';

/**
 * The realistic preset, except: 100× faster; the simulator looks for uploads every 200 ms of real time
 * (pendingPollMs is not scaled); and it reads images at 64 KiB/s (scaled: 16 MiB in 2.6 s) so that the
 * Pending-while-reading phase of these small disks spans several polls, as it does for real-sized ones.
 */
const REALISTIC = {
  profile: 'realistic',
  speed: { timeScale: 0.01, pendingPollMs: 200, readBytesPerSecond: 64 * 1024 },
};
const SETTINGS: MigrationSettings = {
  ...DEFAULT_SETTINGS,
  partSizeBytes: 8 * 1024 * 1024,
  pollInitialSeconds: 0.5,
  pollMaxSeconds: 2,
  pollBackoff: 1.5,
  deadlineSeconds: 600,
};
/**
 * The short-deadline VM: its 32 MiB disk takes at least 5 s to read and the preset's 6 s overhead to convert
 * after ImportInstance, so an 8 s deadline from the workflow's start always comes first.
 */
const SHORT_DEADLINE_SECONDS = 8;

type Task = SimState['tasks'][number] & { readyAt?: string; slotAt?: string; judged?: string };

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let images: { dir: string; remove(): Promise<void> };
let taskQueue: string;
let worker: Worker;
let workerRun: Promise<void>;
const batch = `realistic-${Date.now().toString(36)}`;

before(async () => {
  [temporal, s3, sim, images] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: REALISTIC, judgeContent: true }),
    tempDir('vmconvoy-realistic-'),
  ]);
  taskQueue = uniqueTaskQueue('conversion-wait-realistic');
  const workers = await createWorkers({
    connection: temporal.nativeConnection,
    namespace: temporal.namespace,
    taskQueue,
    aws: localAwsConfig(s3, sim),
    workflowBundle: await workflowBundle(),
  });
  worker = workers[0]!;
  workerRun = worker.run();
});

after(async () => {
  worker?.shutdown();
  await workerRun;
  await Promise.all([sim?.stop(), s3?.stop(), images?.remove()]);
  await temporal?.stop();
});

async function startVm(name: string, sizeMiB: number, settings: Partial<MigrationSettings> = {}) {
  const guest = sizeMiB > 16 ? GUESTS.centos511 : GUESTS.ubuntu2204;
  const image = await makeGuestImage(images.dir, `${name}.raw`, guest, 'raw', { sizeMiB });
  const input: MigrateVmInput = {
    batch,
    // Real guests, but disks this small leave less than the 250 MiB VM Import needs free: inspection would
    // refuse them at pre-flight, and this test is about how the conversion is waited for.
    spec: vmSpecSchema.parse({ name, image, architecture: 'x86_64', instanceType: 't2.medium', inspection: 'skip' }),
    settings: { ...SETTINGS, ...settings },
  };
  return temporal.client.workflow.start('migrateVmWorkflow', {
    taskQueue,
    workflowId: `${batch}/${name}`,
    args: [input],
  });
}

const taskOf = (state: SimState, vm: string): Task | undefined =>
  state.tasks.find((t) => t.manifestUrl.includes(`/${batch}/${vm}/manifest.xml`));

/** The conversion-check timers of a VM's history, in seconds, in order. */
async function pollTimers(handle: WorkflowHandle): Promise<number[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.timerStartedEventAttributes?.startToFireTimeout)
    .filter((d) => d != null)
    .map((d) => Number(d.seconds ?? 0) + (d.nanos ?? 0) / 1e9);
}

interface Sample {
  vm: string;
  status: VmStatus;
  task?: Task;
}

test('realistic profile: Pending while read, queued behind two conversions, Progress beside BytesConverted 0; the VMs back off, follow StatusMessage and complete, and a short deadline fails its VM and cancels its task', async () => {
  const started = Date.now();
  const vms = ['web', 'api', 'db'];
  const handles = await Promise.all(vms.map((vm) => startVm(vm, 16)));
  const late = await startVm('late', 32, { deadlineSeconds: SHORT_DEADLINE_SECONDS });

  // Sample every VM's own status beside what the simulator holds, until every workflow has ended.
  const samples: Sample[] = [];
  let maxConverting = 0;
  let queuedSeen: string | undefined;
  const ended = Promise.allSettled([...handles, late].map((h) => h.result()));
  let done = false;
  void ended.then(() => (done = true));
  while (!done) {
    const state = await sim.state();
    const active = state.tasks.filter((t) => t.state === 'active') as Task[];
    maxConverting = Math.max(maxConverting, active.filter((t) => t.slotAt).length);
    const queued = active.find((t) => t.readyAt && !t.slotAt);
    if (queued && active.filter((t) => t.slotAt).length === 2) queuedSeen ??= queued.id;
    for (const [vm, handle] of [...vms.map((vm, i) => [vm, handles[i]!] as const), ['late', late] as const]) {
      const status = await handle.query(vmStatusQuery).catch(() => undefined);
      if (status) samples.push({ vm, status, task: taskOf(state, vm) });
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  const elapsed = (Date.now() - started) / 1000;

  // The three ordinary VMs complete; the simulator judged their disks.
  const results = await ended;
  for (const [i, vm] of vms.entries()) {
    assert.equal(results[i]!.status, 'fulfilled', `${vm}: ${String((results[i] as PromiseRejectedResult).reason)}`);
  }
  const state = await sim.state();
  for (const vm of vms) {
    const task = taskOf(state, vm)!;
    assert.equal(task.state, 'completed', vm);
    assert.match(task.judged ?? '', /Ubuntu 22\.04/);
  }

  // The account's queue: never more than two conversions at once, and a third waited, Pending, for a slot.
  assert.ok(maxConverting <= 2, `at most two conversions at once (saw ${maxConverting})`);
  assert.ok(queuedSeen, 'a ready task waited in the queue while two converted');

  const converting = samples.filter((s) => vms.includes(s.vm) && s.status.phase === 'Converting');
  // Pending while EC2 reads the image: the VM is converting at 0 %, the task holds a slot but shows Pending.
  assert.ok(
    converting.some((s) => s.status.statusMessage === 'Pending' && s.status.percent === 0 && s.task?.slotAt),
    'a VM sat at Pending, 0 %, while EC2 read its image'
  );
  // Converting: the VM's percent is the one in "Progress: N%", while EC2's BytesConverted is still 0.
  const progressing = converting.filter(
    (s) => /^Progress: \d+%$/.test(s.status.statusMessage ?? '') && s.status.percent > 0
  );
  assert.ok(progressing.length >= 3, `progress seen across polls (${progressing.length} samples)`);
  for (const s of progressing)
    assert.equal(s.status.percent, Number(/(\d+)%/.exec(s.status.statusMessage!)![1]), s.status.statusMessage);
  assert.ok(
    progressing.some((s) => s.task?.state === 'active' && s.task.bytesConverted === 0),
    'the VM showed progress while BytesConverted was 0, as on real EC2'
  );

  // Back-off: while Pending the checks follow the product's geometric schedule (1 → 1.5 → 2 s with these
  // settings), never above the cap, and never below the first interval when progress shortens them.
  const schedule = [nextPollInterval(SETTINGS.pollInitialSeconds, SETTINGS)];
  while (schedule.length < 3) schedule.push(nextPollInterval(schedule.at(-1)!, SETTINGS));
  for (const [i, vm] of vms.entries()) {
    const timers = await pollTimers(handles[i]!);
    assert.ok(timers.length >= 4, `${vm}: ${timers.join(', ')}`);
    assert.deepEqual(timers.slice(0, 3), schedule, `${vm}: ${timers.join(', ')}`);
    assert.ok(
      timers.every((t) => t >= SETTINGS.pollInitialSeconds - 0.001 && t <= SETTINGS.pollMaxSeconds + 0.001),
      `${vm}: ${timers.join(', ')}`
    );
    assert.ok(timers.includes(SETTINGS.pollMaxSeconds), `${vm} reached the cap: ${timers.join(', ')}`);
  }

  // The deadline: the late VM fails with DeadlineExceeded and EC2's last status, and its task is cancelled.
  const lateResult = results[3]!;
  assert.equal(lateResult.status, 'rejected');
  const err: unknown = lateResult.reason;
  assert.ok(err instanceof WorkflowFailedError);
  assert.match(
    String(err.cause?.message),
    /did not complete before the VM deadline \(last status: (Pending|Progress: \d+%)\)/
  );
  const lateStatus = await late.query(vmStatusQuery);
  assert.deepEqual([lateStatus.phase, lateStatus.lastError?.type], ['Failed', 'DeadlineExceeded']);
  const lateTask = taskOf(await sim.state(), 'late');
  assert.ok(lateTask, 'the late VM did import');
  assert.match(lateTask.state, /^cancel/, 'its conversion task was cancelled');
  console.log(`[realistic] 3 VMs + 1 deadline in ${elapsed.toFixed(1)} s, ${samples.length} samples`);
});
