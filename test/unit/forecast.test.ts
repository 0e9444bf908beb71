/**
 * The forecast model (client/forecast/): the makespan bound, the poll schedule, rate parsing, and the
 * schedule played forward with the fleet's rules (upload window, in-flight window, waves, canary,
 * conversion slots), and from where a batch under way is.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { lowerBound, makespanBound } from '../../client/forecast/bound';
import type { ForecastRates } from '../../client/forecast/rates';
import { DEFAULT_RATES, GiB, conversionSeenAfter, parseDuration, parseRate } from '../../client/forecast/rates';
import type { ForecastVm } from '../../client/forecast/simulate';
import { forecast } from '../../client/forecast/simulate';

const MiB = 1024 ** 2;

/** Rates with no fixed steps and polls every second: times are easy to compute by hand. */
const PLAIN: ForecastRates = {
  ...DEFAULT_RATES,
  uplinkBytesPerSecond: 10 * MiB,
  perUploadBytesPerSecond: 1e12,
  conversionSecondsPerGiB: 1024, // 1 MiB/s
  conversionOverheadSeconds: 0,
  preflightSeconds: 0,
  manifestSeconds: 0,
  importSeconds: 0,
  validateSeconds: 0,
  pollInitialSeconds: 1,
  pollBackoff: 1,
  pollMaxSeconds: 1,
};

const vm = (name: string, mib: number, wave = 1): ForecastVm => ({
  name,
  wave,
  uploadBytes: mib * MiB,
  convertBytes: mib * MiB,
});

test('the bound of the makespan benchmark is the one its full run recorded', () => {
  const result = JSON.parse(readFileSync(path.join(__dirname, '../../bench/results/makespan.json'), 'utf8')) as {
    parameters: { vms: number; sizesMiB: number[] };
    figures: Array<{ label: string; value: number }>;
  };
  const { vms, sizesMiB } = result.parameters;
  const sizes = Array.from({ length: vms }, (_, i) => sizesMiB[i % sizesMiB.length]! * MiB);
  const bound = lowerBound(sizes, 24 * MiB, MiB, 5);
  assert.equal(bound.seconds, result.figures.find((f) => f.label === 'lower bound')!.value);
  assert.equal(bound.boundBy, 'quota');
  assert.equal(makespanBound([10, 1], [100, 1], 5).boundBy, 'largest VM');
  assert.equal(makespanBound([50, 50], [1, 1], 5).boundBy, 'uplink');
  assert.equal(makespanBound([], [], 5).seconds, 0);
});

test('a conversion is seen complete at the poll that follows its end, and never a poll interval past the expected end once progress shows', () => {
  const r = { ...DEFAULT_RATES, pollInitialSeconds: 5, pollBackoff: 1.5, pollMaxSeconds: 300 };
  assert.equal(conversionSeenAfter(2, r), 5, 'the first poll comes after 5 s');
  assert.equal(conversionSeenAfter(12.5, r), 12.5, '5, then 7.5 later');
  // Without the cap at the expected end, a 1-hour conversion would be seen up to 300 s late.
  const hour = conversionSeenAfter(3600, r);
  assert.ok(hour >= 3600 && hour <= 3605, `seen at ${hour}`);
});

test('rates and durations as operators write them', () => {
  assert.equal(parseRate('200MB/s'), 200e6);
  assert.equal(parseRate('1.5 GiB/s'), 1.5 * GiB);
  assert.equal(parseRate('10Gbit/s'), 1.25e9);
  assert.equal(parseRate('800Mbps'), 100e6);
  assert.equal(parseRate('800Mb/s'), 100e6);
  assert.equal(parseRate('200'), undefined, 'a unit is required');
  assert.equal(parseRate('fast'), undefined);
  assert.equal(parseRate('0MB/s'), undefined);
  assert.equal(parseDuration('3m'), 180);
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('1.5h'), 5400);
  assert.equal(parseDuration('soon'), undefined);
});

test('one VM: each step after the other', () => {
  const rates = { ...PLAIN, preflightSeconds: 1, manifestSeconds: 2, importSeconds: 3, validateSeconds: 4 };
  const f = forecast([vm('a', 20)], rates, { maxUploads: 4, maxConversions: 5 });
  const a = f.vms[0]!;
  assert.deepEqual(
    [a.start, a.uploadEnd, a.slotRequested, a.conversionStart, a.conversionEnd, a.end],
    [0, 1 + 2, 3 + 2, 5, 5 + 3 + 20, 28 + 4]
  );
  assert.equal(f.makespan, 32);
});

test('uploads share the uplink, at most max-uploads at once; conversions wait for a slot', () => {
  const vms = Array.from({ length: 8 }, (_, i) => vm(`v${i}`, 10));
  const f = forecast(vms, PLAIN, { maxUploads: 2, maxConversions: 1, maxInFlight: 100 });
  // Two uploads of 10 MiB share 10 MiB/s: each takes 2 s; the next pair starts when they end.
  assert.deepEqual(
    f.vms.map((v) => v.uploadEnd),
    [2, 2, 4, 4, 6, 6, 8, 8]
  );
  for (const t of [0.5, 2.5, 5]) {
    const uploading = f.vms.filter((v) => v.start! <= t && t < v.uploadEnd!).length;
    assert.ok(uploading <= 2, `${uploading} uploading at ${t}`);
  }
  // One slot, conversions of 10 s one after another: the quota bounds the batch.
  const starts = f.vms.map((v) => v.conversionStart!);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! >= f.vms[i - 1]!.conversionEnd!);
  assert.equal(f.makespan, 2 + 8 * 10);
  assert.equal(f.boundBy, 'quota');
  assert.ok(f.makespan >= f.boundSeconds);
});

test('what bounds a batch: the uplink, or one large VM', () => {
  const fastConversions = { ...PLAIN, conversionSecondsPerGiB: 1 };
  const uplink = forecast(
    Array.from({ length: 10 }, (_, i) => vm(`v${i}`, 50)),
    fastConversions,
    { maxUploads: 4, maxConversions: 5 }
  );
  assert.equal(uplink.boundBy, 'uplink');
  assert.ok(Math.abs(uplink.makespan - 50) < 2, `500 MiB over 10 MiB/s: ${uplink.makespan}`);
  const large = forecast([vm('big', 300), vm('s1', 1), vm('s2', 1)], PLAIN, { maxUploads: 4, maxConversions: 5 });
  assert.equal(large.boundBy, 'largest VM');
});

test('the in-flight window holds VMs back even when uploads have room', () => {
  const vms = Array.from({ length: 6 }, (_, i) => vm(`v${i}`, 1));
  const f = forecast(vms, PLAIN, { maxUploads: 10, maxConversions: 1, maxInFlight: 2 });
  for (let i = 2; i < 6; i++) {
    const endedBefore = f.vms.filter((v) => v.end <= f.vms[i]!.start!).length;
    assert.ok(endedBefore >= i - 1, `v${i} started with at most 2 in flight`);
  }
});

test('a wave starts once the one before has ended; a canary holds the rest until it finishes', () => {
  const vms = [vm('a1', 5), vm('a2', 30), vm('b1', 5, 2), vm('b2', 5, 2)];
  const f = forecast(vms, PLAIN, { maxUploads: 4, maxConversions: 5 });
  const end1 = Math.max(f.vms[0]!.end, f.vms[1]!.end);
  assert.ok(f.vms[2]!.start! >= end1 && f.vms[3]!.start! >= end1);
  assert.deepEqual(
    f.waves.map((w) => [w.wave, w.vms, w.start <= w.end]),
    [
      [1, 2, true],
      [2, 2, true],
    ]
  );
  assert.equal(f.waves[1]!.start, end1);

  const c = forecast([vm('c1', 5), vm('c2', 20), vm('c3', 5)], PLAIN, { maxUploads: 4, maxConversions: 5, canary: 2 });
  assert.ok(c.vms[2]!.start! >= Math.max(c.vms[0]!.end, c.vms[1]!.end));
  const free = forecast([vm('c1', 5), vm('c2', 20), vm('c3', 5)], PLAIN, { maxUploads: 4, maxConversions: 5 });
  assert.equal(free.vms[2]!.start, 0, 'without a canary all three start at once');
});

test('a batch under way is played forward from where each VM is', () => {
  const vms = [vm('a', 100), vm('b', 100), vm('c', 10)];
  const limits = { maxUploads: 2, maxConversions: 1 };
  const fresh = forecast(vms, PLAIN, limits);
  const halfway = forecast(
    vms,
    PLAIN,
    limits,
    new Map([
      ['a', { stage: 'upload' as const, elapsed: 10, bytesDone: 90 * MiB }],
      ['b', { stage: 'convert' as const, elapsed: 60 }],
    ])
  );
  const a = halfway.vms.find((v) => v.name === 'a')!;
  assert.equal(a.start, null, 'started before now');
  assert.equal(a.uploadEnd, 2, '10 MiB left, sharing 10 MiB/s with c');
  const b = halfway.vms.find((v) => v.name === 'b')!;
  assert.equal(b.conversionEnd, 40, '100 s of conversion, 60 done');
  assert.equal(halfway.vms.find((v) => v.name === 'c')!.start, 0, 'c starts now: only a uploads');
  assert.ok(halfway.makespan < fresh.makespan);
});

test('on the makespan benchmark, the forecast is within 15% of the makespan its last full run measured', () => {
  // bench/results/makespan.json is the full run of 2026-12-01 (200 VMs through the real fleet, 601 s): a
  // measured figure, not a --quick one.
  const result = JSON.parse(readFileSync(path.join(__dirname, '../../bench/results/makespan.json'), 'utf8')) as {
    quick: boolean;
    parameters: {
      vms: number;
      sizesMiB: number[];
      uplinkMiBps: number;
      conversionMiBps: number;
      slots: number;
      settings: { pollInitialSeconds: number };
    };
    figures: Array<{ label: string; value: number }>;
  };
  assert.equal(result.quick, false);
  const p = result.parameters;
  const measured = result.figures.find((f) => f.label === 'vmconvoy makespan')!.value;
  const vms = Array.from({ length: p.vms }, (_, i) => vm(`vm-${i}`, p.sizesMiB[i % p.sizesMiB.length]!));
  const f = forecast(
    vms,
    {
      ...DEFAULT_RATES,
      uplinkBytesPerSecond: p.uplinkMiBps * MiB,
      conversionSecondsPerGiB: 1024 / p.conversionMiBps,
      conversionOverheadSeconds: 0,
      pollInitialSeconds: p.settings.pollInitialSeconds,
    },
    // The benchmark's limits: 4 uploads, the quota of 5, the in-flight window's default.
    { maxUploads: 4, maxConversions: p.slots }
  );
  const ratio = f.makespan / measured;
  console.log(`[forecast] makespan benchmark: forecast ${f.makespan.toFixed(0)} s, measured ${measured.toFixed(0)} s`);
  assert.ok(Math.abs(ratio - 1) <= 0.15, `forecast ${f.makespan} s vs measured ${measured} s (${ratio.toFixed(3)}×)`);
  assert.equal(f.boundBy, 'quota');
});
