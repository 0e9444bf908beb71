/**
 * The simulator's behaviour, all of it changeable at run time through `POST /_sim/config` (a partial,
 * deep-merged) or `--config FILE` at start: conversion speed, EC2's limits, and injected faults.
 * Defaults are EC2's where EC2 has one.
 */
import { z } from 'zod';

const rate = z.number().min(0).max(1);

export const speedSchema = z.object({
  /** Conversion throughput; a conversion takes imageBytes / this (AWS: upload dominates, minutes here). */
  conversionBytesPerSecond: z.number().positive().default(64 * 1024 * 1024),
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
  expirySeconds: z.number().positive().default(7 * 24 * 3600),
});

export const faultsSchema = z.object({
  /** Deterministic fault sequence. */
  seed: z.number().int().default(1),
  /** Restrict probabilistic faults to these actions; empty = every EC2 action. */
  actions: z.array(z.string()).default([]),
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
  oversizedBodyBytes: z.number().int().min(0).max(512 * 1024 * 1024).default(20 * 1024 * 1024),
  hangRate: rate.default(0),
  wrongContentTypeRate: rate.default(0),
});

export const simConfigSchema = z.object({
  speed: speedSchema.default(speedSchema.parse({})),
  limits: limitsSchema.default(limitsSchema.parse({})),
  faults: faultsSchema.default(faultsSchema.parse({})),
});
export type SimConfig = z.output<typeof simConfigSchema>;

export const DEFAULT_CONFIG: SimConfig = simConfigSchema.parse({});

/** A partial config: every section and key optional; unknown keys are an error (typos must not pass). */
export const simConfigPatchSchema = z
  .object({
    speed: speedSchema.partial().strict(),
    limits: limitsSchema.partial().strict(),
    faults: faultsSchema.partial().strict(),
  })
  .partial()
  .strict();
export type SimConfigPatch = z.input<typeof simConfigPatchSchema>;

export function mergeConfig(base: SimConfig, patch: unknown): SimConfig {
  const parsed = simConfigPatchSchema.safeParse(patch);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  }
  return {
    speed: { ...base.speed, ...parsed.data.speed },
    limits: { ...base.limits, ...parsed.data.limits },
    faults: { ...base.faults, ...parsed.data.faults },
  };
}
