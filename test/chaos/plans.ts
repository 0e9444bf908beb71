/**
 * The chaos scenarios. FULL is `npm run test:chaos` (issue #7: 100 VMs, the worker SIGKILLed 5 times during
 * uploads, conversion waits and validation, Temporal, S3 and the simulator each restarted once, 20 %
 * throttling and 2 % 5xx; issue #15: EC2 lists new tasks, instances and volumes 5-20 s late, a third of the
 * VMs run the boot check, a kill lands inside one, a VM is terminated while it holds a conversion slot, one
 * VM fails its boot check because its instance is stopped under it, and `vmconvoy retry` runs the failed VMs
 * again). REDUCED is the same run at a size `npm test` can afford: everything but the terminated VM, which
 * the fleet only notices at its 5-minute reconcile (workflows/migrate-fleet.ts), longer than that run, and
 * the forced boot-check failure with its `retry` (a timeout and a second batch run: over a minute; the full
 * run has it, and test/integration/migrate-vm.test.ts covers the retry's adoption in `npm test`).
 */
import type { ChaosOptions } from './scenario';

type Scenario = Omit<ChaosOptions, 'log' | 'seed' | 'workerEntry'>;

/** EC2 misbehaving: 20 % of calls throttled, 2 % answered 500, 5 % of ImportInstance answers lost. */
const FAULTS = { seed: 7, throttleRate: 0.2, internalErrorRate: 0.02, lostImportResponseRate: 0.05 };

export const FULL: Scenario = {
  vms: 100,
  waves: 2,
  failEvery: 20,
  imageMiB: 24,
  faults: FAULTS,
  listingDelaySeconds: [5, 20],
  bootCheckEvery: 3,
  // The boot check passes at its second status poll (10 s); 60 s is plenty even when throttled, and is how
  // long the trapped VM takes to fail. The listing wait covers the 20 s delay twice over.
  settings: { bootCheckTimeoutSeconds: 60, importListingWaitSeconds: 45 },
  holderCheckSeconds: 30,
  validationRetry: true,
  // ~3-12 s per conversion: the quota of 5 makes conversion waits the long pole, as on AWS.
  conversionBytesPerSecond: 2 * 1024 * 1024,
  uploadBytesPerSecond: 40 * 1024 * 1024,
  maxUploads: 4,
  maxConversions: 5,
  timeoutMs: 45 * 60_000,
  // Spread over the batch: the first disruptions in wave 1's start, the last ones in wave 2.
  plan: [
    { kind: 'kill-worker', during: 'uploading' },
    { kind: 'restart-s3', during: 'uploading', afterFinished: 0.05 },
    { kind: 'kill-worker', during: 'boot-check', afterFinished: 0.1 },
    { kind: 'kill-worker', during: 'converting', afterFinished: 0.15 },
    { kind: 'restart-sim', during: 'converting', afterFinished: 0.25 },
    { kind: 'kill-worker', during: 'validating', afterFinished: 0.35 },
    { kind: 'restart-temporal', during: 'converting', afterFinished: 0.45 },
    // Early in wave 2: the fleet notices the terminated VM at its 5-minute reconcile, within the wave.
    { kind: 'terminate-vm', during: 'holding-slot', afterFinished: 0.5 },
    { kind: 'kill-worker', during: 'uploading', afterFinished: 0.55 },
    { kind: 'kill-worker', during: 'any', afterFinished: 0.75 },
  ],
};

export const REDUCED: Scenario = {
  vms: 10,
  waves: 2,
  failEvery: 5,
  imageMiB: 16,
  faults: FAULTS,
  conversionBytesPerSecond: 3 * 1024 * 1024,
  uploadBytesPerSecond: 10 * 1024 * 1024,
  maxUploads: 3,
  maxConversions: 3,
  listingDelaySeconds: [2, 6],
  bootCheckEvery: 2,
  // A boot check passes at its second status poll (10 s).
  settings: { bootCheckTimeoutSeconds: 60, importListingWaitSeconds: 15 },
  holderCheckSeconds: 15,
  validationRetry: false,
  timeoutMs: 8 * 60_000,
  // Uploads first (wave 1 uploads for a while; wave 2's may be over before a late plan item gets its turn).
  plan: [
    { kind: 'kill-worker', during: 'uploading' },
    { kind: 'restart-s3', during: 'uploading' },
    { kind: 'kill-worker', during: 'boot-check' },
    { kind: 'restart-sim', during: 'converting' },
    { kind: 'restart-temporal', during: 'converting', afterFinished: 0.2 },
    { kind: 'kill-worker', during: 'converting', afterFinished: 0.3 },
  ],
};

/** The mutation check: a short run that must catch duplicate conversion tasks. */
export const MUTANT: Scenario = {
  ...REDUCED,
  vms: 8,
  failEvery: 0,
  // Lost ImportInstance answers are what the idempotency lookup exists for.
  faults: { ...FAULTS, lostImportResponseRate: 0.3 },
  // Only the lookup under test: no validation trap, no retry.
  validationRetry: false,
  plan: [{ kind: 'kill-worker', during: 'converting' }],
};
