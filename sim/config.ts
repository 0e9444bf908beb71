/**
 * The simulator's behaviour, all of it changeable at run time through `POST /_sim/config` (a partial,
 * deep-merged) or `--config FILE` at start: conversion timing, EC2's limits, listing delays, content
 * judging and injected faults. Defaults are EC2's where EC2 has one; timing defaults are the fast profile
 * the tests use. `profile` selects a named timing preset (sim/README.md, "Timing profiles").
 */
import { z } from 'zod';

const rate = z.number().min(0).max(1);

export const speedSchema = z.object({
  /** Conversion throughput when `secondsPerGiB` is 0: a conversion takes imageBytes / this. */
  conversionBytesPerSecond: z
    .number()
    .positive()
    .default(64 * 1024 * 1024),
  /** At least this long per conversion. */
  minConversionSeconds: z.number().min(0).default(0),
  /** Progress advances in steps of this many seconds (the `Progress: N%` granularity). */
  stepSeconds: z.number().positive().default(1),
  /** How often a task waiting for its manifest and parts tries to read them. */
  pendingPollMs: z.number().int().positive().default(500),
  /** cancelling → cancelled. */
  cancelSeconds: z.number().min(0).default(0.5),
  /** pending → running and stopping → stopped for Start/StopInstances. */
  instanceTransitionSeconds: z.number().min(0).default(0.5),
  /**
   * Median conversion seconds per GiB of Image.Bytes, drawn per task from a log-normal distribution
   * (seeded by faults.seed); 0 = use conversionBytesPerSecond instead (deterministic).
   */
  secondsPerGiB: z.number().min(0).default(0),
  /** Spread (sigma of the underlying normal) of the per-GiB draw. */
  secondsPerGiBSigma: z.number().min(0).max(3).default(0),
  /** Fixed overhead added to every drawn conversion (boot, driver injection…). */
  overheadSeconds: z.number().min(0).default(0),
  /** How fast EC2 reads the uploaded image once a conversion slot is free; the task stays Pending meanwhile. 0 = instantly. */
  readBytesPerSecond: z.number().min(0).default(0),
  /** Conversions that run at once per account; further ready tasks queue, still Pending. 0 = no queue. */
  conversionSlots: z.number().int().min(0).default(0),
  /** `progress`: BytesConverted follows Progress; `zero-until-done`: 0 until completed (as seen on real EC2). */
  bytesConverted: z.enum(['progress', 'zero-until-done']).default('progress'),
  /** Every drawn or configured duration above is multiplied by this (0.01 = a hundred times faster). */
  timeScale: z.number().positive().default(1),
});

export const limitsSchema = z.object({
  /** Active conversions per region before ResourceLimitExceeded (EC2: about 5). */
  maxActiveConversions: z.number().int().positive().default(5),
  /** Mutating calls (ImportInstance, CancelConversionTask, CreateTags, Start/Stop/Terminate): burst and refill per s. */
  mutatingBurst: z.number().positive().default(50),
  mutatingRefillPerSecond: z.number().positive().default(5),
  /** Describe calls: burst and refill per s. */
  describeBurst: z.number().positive().default(100),
  describeRefillPerSecond: z.number().positive().default(20),
  /** Upload deadline after ImportInstance (ExpirationTime); then the task is cancelled, "Task expired". */
  expirySeconds: z
    .number()
    .positive()
    .default(7 * 24 * 3600),
});

/** EC2's eventual consistency: a new task, instance or volume is listed only after a random delay. */
export const consistencySchema = z.object({
  listingDelayMinSeconds: z.number().min(0).default(0),
  listingDelayMaxSeconds: z.number().min(0).default(0),
});

/** Judging the image by its content (partitions, file system, OS, kernel) as VM Import does. */
export const judgeSchema = z.object({
  /** false = the old, kinder behaviour: only the container (VMDK/VHD headers) is checked. */
  content: z.boolean().default(true),
});

export const faultsSchema = z.object({
  /** Deterministic fault sequence (also seeds drawn durations and listing delays). */
  seed: z.number().int().default(1),
  /** Restrict probabilistic faults to these actions; empty = every EC2 action. */
  actions: z.array(z.string()).default([]),
  /** Actions the caller's IAM policy does not allow: UnauthorizedOperation (403), DryRun or not. */
  unauthorizedActions: z.array(z.string()).default([]),
  internalErrorRate: rate.default(0),
  unavailableRate: rate.default(0),
  throttleRate: rate.default(0),
  connectionResetRate: rate.default(0),
  slowResponseRate: rate.default(0),
  slowResponseMs: z.number().int().min(0).default(2000),
  /** ImportInstance creates the task, then the connection is reset: the caller never learns the ID. */
  lostImportResponseRate: rate.default(0),
  /** "SERVER_ERROR : conversion : AWS initiated task cancellation" during conversion. */
  awsCancelRate: rate.default(0),
  malformedXmlRate: rate.default(0),
  oversizedBodyRate: rate.default(0),
  /** How much padding an oversized response carries (a client should refuse it, or at least survive it). */
  oversizedBodyBytes: z
    .number()
    .int()
    .min(0)
    .max(512 * 1024 * 1024)
    .default(20 * 1024 * 1024),
  hangRate: rate.default(0),
  wrongContentTypeRate: rate.default(0),
});

/**
 * Who signs: the simulator's own key (--access-key) belongs to `defaultAccountId`; `keys` adds more, each
 * in an account of its own or a shared one, and `regions` the Regions it answers for besides its own
 * (--region). Conversion tasks and their limit are per account and Region, as AWS's quotas are
 * (sim/README.md, "Accounts and Regions"); STS GetCallerIdentity names the caller's account.
 */
/** The account of the simulator's own key unless the config names another. */
export const DEFAULT_ACCOUNT_ID = '000000000000';

export const accountsSchema = z.object({
  defaultAccountId: z
    .string()
    .regex(/^\d{12}$/, 'an AWS account ID is 12 digits')
    .default(DEFAULT_ACCOUNT_ID),
  keys: z
    .record(
      z.string().min(1),
      z.object({
        secretAccessKey: z.string().min(1),
        accountId: z.string().regex(/^\d{12}$/, 'an AWS account ID is 12 digits'),
      })
    )
    .default({}),
  regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'a Region name such as eu-west-1')).default([]),
});

export const PROFILES = ['fast', 'realistic'] as const;
export type Profile = (typeof PROFILES)[number];

export const simConfigSchema = z.object({
  profile: z.enum(PROFILES).default('fast'),
  speed: speedSchema.default(speedSchema.parse({})),
  limits: limitsSchema.default(limitsSchema.parse({})),
  consistency: consistencySchema.default(consistencySchema.parse({})),
  judge: judgeSchema.default(judgeSchema.parse({})),
  faults: faultsSchema.default(faultsSchema.parse({})),
  accounts: accountsSchema.default(accountsSchema.parse({})),
});
export type SimConfig = z.output<typeof simConfigSchema>;

type Speed = SimConfig['speed'];
type Consistency = SimConfig['consistency'];

/**
 * What each profile sets. `fast` is the schema defaults (tests: sub-second conversions, everything listed
 * at once). `realistic` follows what real imports show (sim/README.md cites each figure or says it is the
 * simulator's guess): minutes per GiB with a wide spread, Pending while EC2 reads the image, a queue of
 * conversions per account, coarse progress, BytesConverted 0 beside "Progress: N%", late listings.
 */
const PRESETS: Record<Profile, { speed: Speed; consistency: Consistency }> = {
  fast: { speed: speedSchema.parse({}), consistency: consistencySchema.parse({}) },
  realistic: {
    speed: speedSchema.parse({
      secondsPerGiB: 180,
      secondsPerGiBSigma: 0.6,
      overheadSeconds: 600,
      readBytesPerSecond: 64 * 1024 * 1024,
      conversionSlots: 2,
      stepSeconds: 60,
      pendingPollMs: 2000,
      cancelSeconds: 30,
      instanceTransitionSeconds: 20,
      bytesConverted: 'zero-until-done',
    }),
    consistency: { listingDelayMinSeconds: 1, listingDelayMaxSeconds: 15 },
  },
};

export function profileDefaults(profile: Profile): { speed: Speed; consistency: Consistency } {
  const preset = PRESETS[profile];
  return { speed: { ...preset.speed }, consistency: { ...preset.consistency } };
}

export const DEFAULT_CONFIG: SimConfig = simConfigSchema.parse({});

/** A partial config: every section and key optional; unknown keys are an error (typos must not pass). */
export const simConfigPatchSchema = z
  .object({
    profile: z.enum(PROFILES),
    speed: speedSchema.partial().strict(),
    limits: limitsSchema.partial().strict(),
    consistency: consistencySchema.partial().strict(),
    judge: judgeSchema.partial().strict(),
    faults: faultsSchema.partial().strict(),
    accounts: accountsSchema.partial().strict(),
  })
  .partial()
  .strict();
export type SimConfigPatch = z.input<typeof simConfigPatchSchema>;

/**
 * Deep-merges a patch. A `profile` in the patch first replaces speed and consistency with that profile's
 * values; the patch's own speed/consistency keys then apply on top (so `{profile: "realistic", speed:
 * {timeScale: 0.01}}` is the realistic profile, a hundred times faster).
 */
export function mergeConfig(base: SimConfig, patch: unknown): SimConfig {
  const parsed = simConfigPatchSchema.safeParse(patch);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  }
  // zod fills a partial schema's defaults in: keep only the keys the patch really has, or a patch of one
  // key would reset its whole section.
  const raw = patch as Record<string, Record<string, unknown> | undefined>;
  const given = <T extends object>(section: keyof SimConfig, value: T | undefined): Partial<T> =>
    Object.fromEntries(
      Object.entries(value ?? {}).filter(([k]) => raw[section] !== undefined && k in raw[section])
    ) as Partial<T>;
  const p = {
    profile: parsed.data.profile,
    speed: given('speed', parsed.data.speed),
    limits: given('limits', parsed.data.limits),
    consistency: given('consistency', parsed.data.consistency),
    judge: given('judge', parsed.data.judge),
    faults: given('faults', parsed.data.faults),
    accounts: given('accounts', parsed.data.accounts),
  };
  const start = p.profile ? { ...base, profile: p.profile, ...profileDefaults(p.profile) } : base;
  const merged: SimConfig = {
    profile: start.profile,
    speed: { ...start.speed, ...p.speed },
    limits: { ...start.limits, ...p.limits },
    consistency: { ...start.consistency, ...p.consistency },
    judge: { ...start.judge, ...p.judge },
    faults: { ...start.faults, ...p.faults },
    accounts: { ...start.accounts, ...p.accounts },
  };
  if (merged.consistency.listingDelayMaxSeconds < merged.consistency.listingDelayMinSeconds) {
    throw new Error('consistency: listingDelayMaxSeconds must be at least listingDelayMinSeconds');
  }
  return merged;
}
