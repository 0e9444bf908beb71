import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextPollInterval } from '../../workflows/conversion-wait';
import { effectiveLimits, validateLimits } from '../../workflows/migrate-fleet';
import { DEFAULT_SETTINGS, vmSpecSchema } from '../../common/contracts/migration';

test('conversion polling backs off geometrically from seconds to the cap and stays under the history budget', () => {
  const intervals: number[] = [];
  let interval = DEFAULT_SETTINGS.pollInitialSeconds;
  let elapsed = 0;
  while (elapsed < 24 * 3600) {
    intervals.push(interval);
    elapsed += interval;
    interval = nextPollInterval(interval, DEFAULT_SETTINGS);
  }
  assert.equal(intervals[0], 5);
  assert.equal(intervals[1], 7.5);
  assert.equal(Math.max(...intervals), DEFAULT_SETTINGS.pollMaxSeconds);
  // About 8 history events per poll round: a 24-hour conversion stays far below 10,240 events.
  assert.ok(intervals.length * 8 < 10_000, `${intervals.length} polls in 24 h`);
  assert.ok(intervals.length < 320, `${intervals.length} polls in 24 h`);
});

test('limits default the in-flight window to uploads + 2 × conversions and reject non-positive values', () => {
  assert.deepEqual(effectiveLimits({ maxUploads: 4, maxConversions: 5 }), {
    maxUploads: 4,
    maxConversions: 5,
    maxInFlight: 14,
  });
  assert.equal(effectiveLimits({ maxUploads: 4, maxConversions: 5, maxInFlight: 6 }).maxInFlight, 6);
  assert.throws(
    () => validateLimits({ maxConversions: 0 }),
    /maxConversions must be a whole number of at least 1 \(got 0\)/
  );
  assert.throws(() => validateLimits({ maxUploads: 2.5 }), /maxUploads/);
  assert.doesNotThrow(() => validateLimits({ maxUploads: 3 }));
});

test('a VM spec gets its defaults and rejects names that cannot be workflow IDs or S3 keys', () => {
  const spec = vmSpecSchema.parse({
    name: 'web-01',
    image: '/i/web.vmdk',
    architecture: 'x86_64',
    instanceType: 'm5.large',
  });
  assert.deepEqual(
    [spec.wave, spec.shutdownBehavior, spec.monitoring, spec.bootCheck, spec.securityGroups],
    [1, 'stop', false, false, []]
  );
  assert.equal(vmSpecSchema.safeParse({ ...spec, name: 'web/01' }).success, false);
  assert.equal(vmSpecSchema.safeParse({ ...spec, name: 'x'.repeat(65) }).success, false);
  assert.equal(vmSpecSchema.safeParse({ ...spec, architecture: 'arm64' }).success, false);
});
