/**
 * `vmconvoy rollback` through the binary, against a real Temporal server, S3 server and the EC2 simulator,
 * with a worker started as an operator starts one: a 10-VM batch is imported, then rolled back. Only what
 * the records name is touched (an instance created beside it with the batch's tags survives), instances
 * started after the batch are left alone until --force, and a second rollback changes nothing.
 */
import {
  CreateTagsCommand,
  EC2Client,
  ImportInstanceCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { RollbackResult } from '../../common/contracts/rollback';
import { rollbackWorkflowId } from '../../common/workflow-ids';
import type { ServiceProcess } from '../../dev/process';
import { makeImage } from '../helpers/images';
import type { SimState, TestS3, TestSim, TestTemporal } from '../helpers/testbed';
import { startS3, startSim, startTemporal, tempDir } from '../helpers/testbed';
import { spawnCliWorker, testbedEnv, eventually, runCli } from './run-cli';

let temporal: TestTemporal;
let s3: TestS3;
let sim: TestSim;
let dir: { dir: string; remove(): Promise<void> };
let worker: ServiceProcess;
let env: NodeJS.ProcessEnv;
let ec2: EC2Client;
const stamp = Date.now().toString(36);
const FAST = { conversionBytesPerSecond: 256 * 1024 * 1024, stepSeconds: 0.2, pendingPollMs: 200 };
const VMS = Array.from({ length: 10 }, (_, i) => `vm-${String(i + 1).padStart(2, '0')}`);
// Inspection skipped: random-byte disks have no guest to look at (test/helpers/images.ts RANDOM_IMAGE_ROW).
const HEADER = 'Name,Image,Format,Architecture,Instance_Type,Platform,Wave,Tags,Inspection';

before(async () => {
  [temporal, s3, sim, dir] = await Promise.all([
    startTemporal(),
    startS3(),
    startSim({ config: { speed: FAST } }),
    tempDir('vmconvoy-rollback-'),
  ]);
  env = testbedEnv({ temporal, s3, sim, dir: dir.dir }, 'e2e-rollback');
  ec2 = new EC2Client({
    region: s3.region,
    endpoint: sim.endpoint,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const images = Promise.all(VMS.map((vm) => makeImage(dir.dir, `${vm}.raw`, 'raw', { virtualMiB: 8, randomMiB: 1 })));
  worker = await spawnCliWorker(env, dir.dir);
  await images;
});

after(async () => {
  ec2?.destroy();
  await worker?.stop();
  await Promise.all([sim?.stop(), s3?.stop()]);
  await temporal?.stop();
  await dir?.remove();
});

const vmconvoy = (...args: string[]) => runCli(args, env, dir.dir);

async function rollbackJson(...args: string[]): Promise<RollbackResult> {
  const run = await vmconvoy('rollback', ...args, '--json');
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as RollbackResult;
}

/** Every instance's and volume's state, and the calls that change them, as the simulator holds them. */
function snapshot(state: SimState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of state.instances) out[i.instanceId] = i.state;
  for (const v of state.volumes) out[v.volumeId] = v.state;
  for (const t of state.tasks) out[t.id] = t.state;
  for (const call of ['TerminateInstances', 'DeleteVolume', 'CancelConversionTask', 'StopInstances'])
    out[call] = String(state.calls[call] ?? 0);
  return out;
}

/** The simulator's state view shows each instance's root volume (sim/state-view.ts). */
function rootVolumeOf(state: SimState, instanceId: string): string | undefined {
  return (state.instances.find((i) => i.instanceId === instanceId) as { rootVolumeId?: string } | undefined)
    ?.rootVolumeId;
}

async function untilInstance(id: string, wanted: string): Promise<void> {
  await eventually(`${id} ${wanted}`, async () =>
    (await sim.state()).instances.find((i) => i.instanceId === id)?.state === wanted ? true : undefined
  );
}

test('rollback of a 10-VM batch: only what the records name goes, started instances wait for --force, a second run changes nothing', async () => {
  const batch = `rb-${stamp}`;
  const csv = path.join(dir.dir, 'ten.csv');
  await writeFile(csv, [HEADER, ...VMS.map((vm) => `${vm},${vm}.raw,RAW,x86_64,t2.medium,,1,,skip`)].join('\n') + '\n');
  const started = await vmconvoy('start', csv, '--batch', batch, '--max-conversions', '5', '--wait');
  assert.equal(started.code, 0, started.stdout + started.stderr);

  const imported = (await sim.state()).instances.filter((i) => i.tags['vmconvoy:batch'] === batch);
  assert.equal(imported.length, 10);
  const instanceOf = (vm: string) => imported.find((i) => i.tags['vmconvoy:vm'] === vm)!.instanceId;

  // Beside the batch: an instance created directly, with the batch's tags but in no record.
  const foreign = await ec2.send(
    new ImportInstanceCommand({
      Platform: 'Linux' as 'Windows', // the SDK's enum lists only Windows; EC2 and the simulator take Linux
      LaunchSpecification: { Architecture: 'x86_64', InstanceType: 't2.medium' },
      DiskImages: [
        {
          Image: { Format: 'RAW', Bytes: 1048576, ImportManifestUrl: 'http://127.0.0.1:9/elsewhere/manifest.xml' },
          Volume: { Size: 1 },
        },
      ],
    })
  );
  const foreignId = foreign.ConversionTask!.ImportInstance!.InstanceId!;
  const foreignTask = foreign.ConversionTask!.ConversionTaskId!;
  await ec2.send(
    new CreateTagsCommand({
      Resources: [foreignId],
      Tags: [
        { Key: 'vmconvoy:batch', Value: batch },
        { Key: 'vmconvoy:vm', Value: 'vm-03' },
      ],
    })
  );
  // After the batch: vm-01 started (and left running), vm-02 started and stopped again.
  await ec2.send(new StartInstancesCommand({ InstanceIds: [instanceOf('vm-01'), instanceOf('vm-02')] }));
  await untilInstance(instanceOf('vm-02'), 'running');
  await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceOf('vm-02')] }));
  await untilInstance(instanceOf('vm-02'), 'stopped');
  const changed = new Set([instanceOf('vm-01'), instanceOf('vm-02')]);

  // The preview changes nothing and says what would go.
  const beforePreview = snapshot(await sim.state());
  const preview = await rollbackJson(batch);
  assert.equal(preview.executed, false);
  assert.equal(preview.items.filter((i) => i.action === 'terminate').length, 8);
  assert.equal(preview.items.filter((i) => i.action === 'delete').length, 8);
  assert.deepEqual(
    preview.items
      .filter((i) => i.skip === 'changed')
      .map((i) => i.id)
      .sort(),
    [...changed].sort()
  );
  assert.deepEqual(
    preview.items.filter((i) => i.skip === 'unrecorded').map((i) => i.id),
    [foreignId]
  );
  assert.deepEqual(snapshot(await sim.state()), beforePreview, 'the preview touched nothing');

  // --yes: the rollback workflow does it.
  const done = await vmconvoy('rollback', batch, '--yes');
  assert.equal(done.code, 0, done.stdout + done.stderr);
  assert.match(done.stdout, /8 instances terminated, 8 volumes deleted, 0 conversion tasks cancelled/);
  assert.match(done.stdout, /started after vmconvoy stopped it/);
  assert.match(done.stdout, /launched again at/);
  assert.match(done.stdout, /--force includes them/);
  assert.match(done.stdout, new RegExp(`${foreignId} .*never touched`));
  const after1 = await sim.state();
  for (const i of imported) {
    const now = after1.instances.find((x) => x.instanceId === i.instanceId)!;
    const volume = after1.volumes.find((v) => v.volumeId === rootVolumeOf(after1, i.instanceId));
    if (changed.has(i.instanceId)) {
      assert.notEqual(now.state, 'terminated', `${i.instanceId} was started after the batch: left alone`);
      assert.equal(volume?.state, 'in-use');
    } else {
      assert.equal(now.state, 'terminated');
      assert.equal(volume?.state, 'deleted');
    }
  }
  const foreignNow = after1.instances.find((i) => i.instanceId === foreignId)!;
  assert.equal(foreignNow.state, beforePreview[foreignId], 'the foreign instance is untouched');
  assert.equal(after1.tasks.find((t) => t.id === foreignTask)?.state, 'active', 'its task is not cancelled');
  const described = await temporal.client.workflow.getHandle(rollbackWorkflowId(batch)).describe();
  assert.equal(described.type, 'rollbackBatchWorkflow');
  assert.equal(described.status.name, 'COMPLETED');

  // A second run changes nothing and says so.
  const quiet = snapshot(after1);
  const again = await vmconvoy('rollback', batch, '--yes');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to do: nothing was changed/);
  assert.deepEqual(snapshot(await sim.state()), quiet, 'the second rollback changed nothing');

  // --force takes the started ones too; the foreign one still stays.
  const forced = await rollbackJson(batch, '--yes', '--force');
  assert.equal(forced.actions, 4, 'two instances and their two volumes');
  const after2 = await sim.state();
  for (const i of imported) {
    const now = after2.instances.find((x) => x.instanceId === i.instanceId)!;
    assert.equal(now.state, 'terminated');
    assert.equal(after2.volumes.find((v) => v.volumeId === rootVolumeOf(after2, i.instanceId))?.state, 'deleted');
  }
  assert.equal(after2.instances.find((i) => i.instanceId === foreignId)?.state, beforePreview[foreignId]);
  assert.equal(after2.tasks.find((t) => t.id === foreignTask)?.state, 'active');
  assert.equal((await rollbackJson(batch, '--yes', '--force')).actions, 0);
});

test('start --on-fail terminate reaches every VM of the batch; another word is refused', async () => {
  const batch = `onfail-${stamp}`;
  const csv = path.join(dir.dir, 'one.csv');
  await writeFile(csv, [HEADER, 'vm-01,vm-01.raw,RAW,x86_64,t2.medium,,1,,skip'].join('\n') + '\n');
  const bad = await vmconvoy('start', csv, '--batch', batch, '--on-fail', 'delete');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--on-fail.*delete.*(keep|choices)/s);
  // A dry run: the setting is in the batch's input from its start, nothing needs to run to the end.
  const run = await vmconvoy('start', csv, '--batch', batch, '--on-fail', 'terminate', '--dry-run');
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const fleet = await temporal.client.workflow.getHandle(batch).describe();
  const memo = fleet.memo as { fleetInput: { settings: { onFail?: string } } };
  assert.equal(memo.fleetInput.settings.onFail, 'terminate');
});
