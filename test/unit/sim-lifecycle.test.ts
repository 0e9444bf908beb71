/**
 * The simulator's model on a fake clock: cancel, instance transitions, minimum duration, a model rebuilt
 * from serialised state continuing, the realistic timing profile (drawn durations, read phase, queue,
 * BytesConverted beside Progress) and listing delays; plus config merging, the fault injector, request
 * limits and the state file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { SimConfig } from '../../sim/config';
import { DEFAULT_CONFIG, mergeConfig } from '../../sim/config';
import { checkImage } from '../../sim/conversion/image-checks';
import { FaultInjector } from '../../sim/faults/fault-injector';
import { RequestLimits } from '../../sim/limits/request-limits';
import { Ec2Model } from '../../sim/model/ec2-model';
import type { SimState } from '../../sim/model/types';
import { emptyState } from '../../sim/model/types';
import { StateFile } from '../../sim/state-file';
import { until } from '../helpers/wait';
import { SIM_TASK_INPUT as input } from '../helpers/sim-task-input';

const MiB = 1024 * 1024;

function world(patch: unknown = {}, state: SimState = emptyState(), start = 1_000_000) {
  let now = start;
  let config: SimConfig = mergeConfig(DEFAULT_CONFIG, patch);
  const m = new Ec2Model(
    state,
    () => now,
    () => config
  );
  return {
    m,
    tick: (ms: number) => {
      now += ms;
      m.advance();
    },
    now: () => now,
    set: (p: unknown) => (config = mergeConfig(config, p)),
  };
}

describe('conversion tasks on a fake clock', () => {
  test('cancel: active → cancelling → cancelled after cancelSeconds, instance and volume removed', () => {
    const { m, tick } = world({ speed: { cancelSeconds: 2, conversionBytesPerSecond: MiB } });
    const task = m.createTask(input);
    m.startConversion(task.id);
    tick(10_000);
    assert.equal(task.statusMessage, 'Progress: 10%');
    m.cancelTask(task.id);
    assert.equal(task.state, 'cancelling');
    assert.equal(m.state.instances.length, 1, 'still there while cancelling');
    assert.throws(() => m.cancelTask(task.id), { code: 'DeleteConversionTaskError' });
    tick(1999);
    assert.equal(task.state, 'cancelling');
    tick(1);
    assert.equal(task.state, 'cancelled');
    assert.deepEqual([m.state.instances.length, m.state.volumes.length], [0, 0]);
    assert.equal(m.activeConversions(), 0);
  });

  test('a completed task cannot be cancelled; unknown and malformed IDs are told apart', () => {
    const { m, tick } = world({ speed: { conversionBytesPerSecond: 100 * MiB } });
    const task = m.createTask(input);
    m.startConversion(task.id);
    tick(1000);
    assert.equal(task.state, 'completed');
    assert.throws(() => m.cancelTask(task.id), { code: 'DeleteConversionTaskError' });
    assert.throws(() => m.describeTasks(['import-i-00000000']), { code: 'InvalidConversionTaskId' });
    assert.throws(() => m.describeTasks(['i-12345678']), { code: 'InvalidConversionTaskId.Malformed' });
    assert.throws(() => m.describeTasks(['import-i-ABC']), { code: 'InvalidConversionTaskId.Malformed' });
  });

  test('minConversionSeconds stretches a small image; progress only moves in whole steps', () => {
    const { m, tick } = world({
      speed: { conversionBytesPerSecond: 1024 * MiB, minConversionSeconds: 10, stepSeconds: 2.5 },
    });
    const task = m.createTask(input);
    m.startConversion(task.id);
    tick(2400);
    assert.deepEqual([task.statusMessage, m.bytesConverted(task)], ['Progress: 0%', 0]);
    tick(100);
    assert.deepEqual([task.statusMessage, m.bytesConverted(task)], ['Progress: 25%', 25 * MiB]);
    tick(7499);
    assert.equal(task.state, 'active');
    tick(1);
    assert.deepEqual([task.state, m.bytesConverted(task)], ['completed', 100 * MiB]);
  });

  test('the instance exists from the start (pending, no root volume) and is stopped with /dev/sda1 at the end', () => {
    const { m, tick } = world({ speed: { conversionBytesPerSecond: 10 * MiB } });
    const task = m.createTask(input);
    const instance = m.state.instances.find((i) => i.instanceId === task.instanceId)!;
    assert.equal(instance.state, 'pending');
    assert.throws(
      () => m.transition([instance.instanceId], 'start'),
      /Instance does not have a volume attached at root \(\/dev\/sda1\)/
    );
    m.startConversion(task.id);
    tick(10_000);
    assert.equal(instance.state, 'stopped');
    const volume = m.state.volumes.find((v) => v.volumeId === task.volumeId)!;
    assert.deepEqual(
      [volume.state, volume.instanceId, volume.device, volume.sizeGib],
      ['in-use', instance.instanceId, '/dev/sda1', 8]
    );
  });

  test('start, stop and terminate pass through pending/stopping/shutting-down on the clock', () => {
    const { m, tick } = world({ speed: { conversionBytesPerSecond: 100 * MiB, instanceTransitionSeconds: 3 } });
    const task = m.createTask(input);
    m.startConversion(task.id);
    tick(1000);
    const id = task.instanceId!;
    const state = () => m.findInstance(id).state;
    assert.deepEqual(m.transition([id], 'start'), [{ id, previous: 'stopped', current: 'pending' }]);
    tick(2999);
    assert.equal(state(), 'pending');
    tick(1);
    assert.equal(state(), 'running');
    m.transition([id], 'stop');
    assert.equal(state(), 'stopping');
    tick(3000);
    assert.equal(state(), 'stopped');
    m.transition([id], 'terminate');
    tick(3000);
    assert.equal(state(), 'terminated');
    assert.throws(() => m.findInstance('i-0000000000000000f'), { code: 'InvalidInstanceID.NotFound' });
    assert.throws(() => m.findInstance('bogus'), { code: 'InvalidInstanceID.Malformed' });
  });

  test('a model rebuilt from the serialised state continues by the clock (restart)', () => {
    const first = world({ speed: { conversionBytesPerSecond: 10 * MiB } });
    const task = first.m.createTask(input);
    first.m.startConversion(task.id);
    first.tick(3000);
    assert.equal(task.statusMessage, 'Progress: 30%');
    const saved = JSON.parse(JSON.stringify(first.m.state)) as SimState;
    // Down for 4 s, then a new process with the same state file.
    const second = world({ speed: { conversionBytesPerSecond: 10 * MiB } }, saved, first.now() + 4000);
    second.m.advance();
    const again = second.m.state.tasks[0]!;
    assert.deepEqual([again.state, again.statusMessage], ['active', 'Progress: 70%']);
    second.tick(3000);
    assert.equal(again.state, 'completed');
    assert.equal(second.m.state.instances[0]!.state, 'stopped');
  });

  test('reset forgets resources and call counts', () => {
    const { m } = world();
    m.createTask(input);
    m.countCall('ImportInstance');
    m.reset();
    assert.deepEqual(m.state, emptyState());
  });
});

describe('timing profiles', () => {
  const GiB = 1024 * MiB;
  const big = { ...input, bytes: 8 * GiB, volumeSizeGib: 16 };

  test('profile "realistic" replaces speed and consistency; keys beside it apply on top; "fast" restores the defaults', () => {
    const realistic = mergeConfig(DEFAULT_CONFIG, { profile: 'realistic', speed: { timeScale: 0.01 } });
    assert.equal(realistic.profile, 'realistic');
    assert.deepEqual(
      [
        realistic.speed.secondsPerGiB > 0,
        realistic.speed.conversionSlots > 0,
        realistic.speed.readBytesPerSecond > 0,
        realistic.speed.bytesConverted,
        realistic.speed.timeScale,
      ],
      [true, true, true, 'zero-until-done', 0.01]
    );
    assert.ok(realistic.consistency.listingDelayMaxSeconds > 0, 'late listings are part of realism');
    assert.equal(
      realistic.limits.maxActiveConversions,
      DEFAULT_CONFIG.limits.maxActiveConversions,
      'limits are not timing'
    );
    const back = mergeConfig(realistic, { profile: 'fast' });
    assert.deepEqual([back.speed, back.consistency], [DEFAULT_CONFIG.speed, DEFAULT_CONFIG.consistency]);
    assert.throws(() => mergeConfig(DEFAULT_CONFIG, { profile: 'slow' }), /profile/);
    assert.throws(
      () => mergeConfig(DEFAULT_CONFIG, { consistency: { listingDelayMinSeconds: 5, listingDelayMaxSeconds: 1 } }),
      /at least/
    );
  });

  test('drawn durations: seeded (same seed, same draws), spread around the per-GiB median, scaled by timeScale', () => {
    // One task per world: its duration is the first draw of the seed's sequence.
    const firstOf = (seed: number, timeScale = 1): number => {
      const { m } = world({
        speed: { secondsPerGiB: 120, secondsPerGiBSigma: 0.5, overheadSeconds: 60, timeScale },
        faults: { seed },
      });
      const task = m.createTask(big);
      m.startConversion(task.id);
      return task.durationMs!;
    };
    assert.equal(firstOf(7), firstOf(7));
    const seeds = Array.from({ length: 60 }, (_, i) => firstOf(i + 1) / 1000);
    const sorted = [...seeds].sort((a, b) => a - b);
    const median = sorted[30]!;
    // 60 s + 8 GiB × 120 s × e^(0.5·N): median near 1020 s, a real spread either side.
    assert.ok(median > 800 && median < 1300, `median ${median}`);
    assert.ok(sorted[0]! < 0.8 * median && sorted[59]! > 1.3 * median, `spread ${sorted[0]}..${sorted[59]}`);
    assert.equal(firstOf(7, 0.01), firstOf(7) * 0.01);
  });

  test('Pending while queued for a slot and while EC2 reads the image; then Progress with BytesConverted 0 until done', () => {
    const { m, tick } = world({
      speed: {
        conversionBytesPerSecond: 10 * MiB,
        readBytesPerSecond: 50 * MiB,
        conversionSlots: 1,
        stepSeconds: 1,
        bytesConverted: 'zero-until-done',
      },
    });
    const [a, b] = [m.createTask(input), m.createTask(input)];
    m.startConversion(a.id);
    m.startConversion(b.id);
    const seen = (t: typeof a) => [m.statusMessage(t), m.bytesConverted(t)];
    assert.deepEqual(
      [seen(a), seen(b)],
      [
        ['Pending', 0],
        ['Pending', 0],
      ],
      'a reads its image (2 s), b waits for the slot'
    );
    tick(1999);
    assert.deepEqual(seen(a), ['Pending', 0]);
    tick(1);
    assert.deepEqual(seen(a), ['Progress: 0%', 0]);
    tick(2000);
    assert.deepEqual(seen(a), ['Progress: 20%', 0], 'Progress moves, BytesConverted stays 0 (as real EC2 shows it)');
    assert.deepEqual(seen(b), ['Pending', 0]);
    tick(8000);
    assert.equal(a.state, 'completed');
    assert.equal(m.bytesConverted(a), 100 * MiB, 'completed: all of it');
    assert.notEqual(b.slotAt, undefined, 'the freed slot goes to b at that tick');
    assert.equal(m.statusMessage(b), 'Pending', 'b now reads its image');
    tick(2000 + 10_000);
    assert.equal(b.state, 'completed');
  });
});

describe('listing delays (eventual consistency)', () => {
  test('a new task, its instance and volume are unknown to Describe until their delays pass; then listed for good', () => {
    const { m, tick } = world({
      consistency: { listingDelayMinSeconds: 2, listingDelayMaxSeconds: 6 },
      faults: { seed: 3 },
    });
    const task = m.createTask(input);
    const instance = m.state.instances[0]!;
    const volume = m.state.volumes[0]!;
    const delays = [task.visibleAt!, instance.visibleAt!, volume.visibleAt!].map((at) => at - 1_000_000);
    for (const d of delays) assert.ok(d >= 2000 && d <= 6000, `delay ${d}`);
    assert.ok(new Set(delays).size > 1, 'each resource draws its own delay');
    assert.deepEqual([m.describeTasks([]), m.listInstances(), m.listVolumes()], [[], [], []]);
    assert.throws(() => m.describeTasks([task.id]), { code: 'InvalidConversionTaskId' });
    assert.throws(() => m.findInstance(instance.instanceId), { code: 'InvalidInstanceID.NotFound' });
    assert.throws(() => m.findVolume(volume.volumeId), { code: 'InvalidVolume.NotFound' });
    assert.throws(() => m.createTags([instance.instanceId], { Name: 'x' }), { code: 'InvalidID' });
    assert.throws(
      () => m.cancelTask(task.id),
      { code: 'InvalidConversionTaskId' },
      'modifying calls too, as the EC2 page says'
    );
    tick(Math.max(...delays));
    assert.deepEqual([m.describeTasks([]).length, m.listInstances().length, m.listVolumes().length], [1, 1, 1]);
    assert.equal(m.describeTasks([task.id])[0], task);
    assert.equal(m.activeConversions(), 1, 'an unlisted task still counts against the quota');
  });

  test('off in the fast profile: everything is listed at once', () => {
    const { m } = world();
    const task = m.createTask(input);
    assert.equal(task.visibleAt, undefined);
    assert.deepEqual([m.describeTasks([]).length, m.listInstances().length, m.listVolumes().length], [1, 1, 1]);
  });
});

describe('image checks', () => {
  test('VHD: conectix footer with a valid checksum, fixed or dynamic, the dynamic copy at 0 identical', () => {
    const footer = (diskType: number) => {
      const f = Buffer.alloc(512);
      f.write('conectix', 0, 'latin1');
      f.writeUInt32BE(diskType, 60);
      let sum = 0;
      for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += f[i]!;
      f.writeUInt32BE(~sum >>> 0, 64);
      return f;
    };
    assert.equal(checkImage('VHD', Buffer.alloc(512), footer(2)), undefined);
    assert.equal(checkImage('VHD', footer(3), footer(3)), undefined);
    assert.equal(checkImage('VHD', Buffer.alloc(512), footer(3)), 'ClientError: Footers not identical');
    assert.equal(
      checkImage('VHD', footer(4), footer(4)),
      'ClientError: Disk validation failed [Unsupported VHD differencing disk]'
    );
    assert.match(checkImage('VHD', Buffer.alloc(512), Buffer.alloc(512))!, /Invalid VHD footer/);
    const corrupt = footer(2);
    corrupt[100] = 1; // any byte changed after the checksum was computed
    assert.match(checkImage('VHD', Buffer.alloc(512), corrupt)!, /checksum mismatch/);
  });

  test('VMDK: only KDMV with compressed grains and deflate', () => {
    const header = (flags: number, algorithm: number) => {
      const h = Buffer.alloc(512);
      h.write('KDMV', 0, 'latin1');
      h.writeUInt32LE(flags, 8);
      h.writeUInt16LE(algorithm, 77);
      return h;
    };
    assert.equal(checkImage('VMDK', header(0x30003, 1), Buffer.alloc(512)), undefined);
    for (const bad of [header(0x30003, 0), header(0x3, 1), Buffer.from('QFI\xfb'.padEnd(512, '\0'), 'latin1')]) {
      assert.equal(
        checkImage('VMDK', bad, Buffer.alloc(512)),
        'ClientError: Disk validation failed [Unsupported VMDK File Format]'
      );
    }
  });
});

describe('config, faults, limits, state file', () => {
  test('a partial config deep-merges over the defaults; bad keys and values are refused with the path', () => {
    const merged = mergeConfig(DEFAULT_CONFIG, {
      speed: { stepSeconds: 0.2 },
      faults: { actions: ['ImportInstance'] },
    });
    assert.equal(merged.speed.stepSeconds, 0.2);
    assert.equal(merged.speed.conversionBytesPerSecond, DEFAULT_CONFIG.speed.conversionBytesPerSecond);
    assert.deepEqual(merged.faults.actions, ['ImportInstance']);
    assert.deepEqual(
      [
        DEFAULT_CONFIG.limits.maxActiveConversions,
        DEFAULT_CONFIG.limits.mutatingBurst,
        DEFAULT_CONFIG.limits.describeRefillPerSecond,
        DEFAULT_CONFIG.speed.pendingPollMs,
      ],
      [5, 50, 20, 500]
    );
    const twice = mergeConfig(mergeConfig(DEFAULT_CONFIG, { speed: { pendingPollMs: 100, cancelSeconds: 0.1 } }), {
      speed: { stepSeconds: 0.3 },
    });
    assert.deepEqual(
      [twice.speed.pendingPollMs, twice.speed.cancelSeconds, twice.speed.stepSeconds],
      [100, 0.1, 0.3],
      'a later patch keeps earlier keys'
    );
    assert.throws(() => mergeConfig(DEFAULT_CONFIG, { speed: { warp: 9 } }), /speed: Unrecognized key/);
    assert.throws(() => mergeConfig(DEFAULT_CONFIG, { faults: { throttleRate: 2 } }), /faults\.throttleRate/);
    assert.throws(
      () => mergeConfig(DEFAULT_CONFIG, { limits: { maxActiveConversions: -1 } }),
      /limits\.maxActiveConversions/
    );
  });

  test('faults are drawn from the seeded sequence and only for the listed actions', () => {
    const config = mergeConfig(DEFAULT_CONFIG, {
      faults: { seed: 42, internalErrorRate: 0.3, unavailableRate: 0.2, actions: ['DescribeConversionTasks'] },
    });
    const run = () => {
      const f = new FaultInjector(() => config);
      return Array.from({ length: 200 }, () => f.pick('DescribeConversionTasks') ?? '-');
    };
    const a = run();
    assert.deepEqual(a, run(), 'same seed, same faults');
    const share = (name: string) => a.filter((x) => x === name).length / a.length;
    assert.ok(share('internalError') > 0.2 && share('internalError') < 0.4, String(share('internalError')));
    assert.ok(share('unavailable') > 0.1 && share('unavailable') < 0.3, String(share('unavailable')));
    assert.equal(new FaultInjector(() => config).pick('ImportInstance'), undefined);
    const lost = mergeConfig(DEFAULT_CONFIG, { faults: { lostImportResponseRate: 1 } });
    assert.equal(new FaultInjector(() => lost).pick('ImportInstance'), 'lostImportResponse');
    assert.equal(new FaultInjector(() => lost).pick('DescribeInstances'), undefined);
  });

  test('mutating and describe calls draw from separate buckets', () => {
    let now = 0;
    const config = mergeConfig(DEFAULT_CONFIG, {
      limits: { mutatingBurst: 2, mutatingRefillPerSecond: 1, describeBurst: 3, describeRefillPerSecond: 10 },
    });
    const limits = new RequestLimits(
      () => config,
      () => now
    );
    assert.deepEqual(
      ['ImportInstance', 'CreateTags', 'StopInstances'].map((a) => limits.tryTake(a)),
      [true, true, false]
    );
    assert.deepEqual(
      ['DescribeConversionTasks', 'DescribeInstances', 'DescribeTags', 'DescribeVolumes'].map((a) => limits.tryTake(a)),
      [true, true, true, false]
    );
    now += 1000;
    assert.deepEqual([limits.tryTake('CancelConversionTask'), limits.tryTake('CancelConversionTask')], [true, false]);
    limits.reset();
    assert.equal(limits.tryTake('TerminateInstances'), true);
  });

  test('the state file is written atomically and read back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sim-state-'));
    try {
      const file = new StateFile(path.join(dir, 'sub', 'state.json'));
      assert.equal(await file.load(), undefined);
      const state = emptyState();
      state.calls.ImportInstance = 3;
      await file.flush(state);
      assert.deepEqual(await file.load(), state);
      assert.deepEqual(await readdir(path.join(dir, 'sub')), ['state.json'], 'no temp file left behind');
      state.calls.ImportInstance = 4;
      file.saveSoon(state);
      // Soon, not at once: the delay is paced by the last write's cost (at least 50 ms, at most 1 s).
      const saved = (): Promise<number> =>
        readFile(path.join(dir, 'sub', 'state.json'), 'utf8').then(
          (t) => (JSON.parse(t) as SimState).calls.ImportInstance ?? 0
        );
      assert.equal(await saved(), 3, 'not written synchronously');
      await until(saved, (n) => n === 4, { timeoutMs: 2000, intervalMs: 20 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
