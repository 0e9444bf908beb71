/**
 * EC2's request throttling per API category: mutating calls (ImportInstance, ImportVolume,
 * CancelConversionTask, CreateTags, Start/Stop/TerminateInstances, AttachVolume, DeleteVolume) and describe calls each draw from
 * their own token bucket. An empty bucket → RequestLimitExceeded (503).
 */
import type { SimConfig } from '../config';
import { TokenBucket } from './token-bucket';

export const MUTATING_ACTIONS: ReadonlySet<string> = new Set([
  'ImportInstance',
  'ImportVolume',
  'CancelConversionTask',
  'CreateTags',
  'StartInstances',
  'StopInstances',
  'TerminateInstances',
  'DeleteVolume',
  'AttachVolume',
]);

export type Category = 'mutating' | 'describe';

export const categoryOf = (action: string): Category => (MUTATING_ACTIONS.has(action) ? 'mutating' : 'describe');

export class RequestLimits {
  private buckets: Record<Category, TokenBucket>;

  constructor(
    private readonly config: () => SimConfig,
    private readonly now: () => number
  ) {
    this.buckets = this.fresh();
  }

  /** Takes a token for the action; false = throttled. */
  tryTake(action: string): boolean {
    return this.buckets[categoryOf(action)].tryTake();
  }

  /** New limits apply at once (tokens already there are kept, capped at the new burst). */
  reconfigure(): void {
    const l = this.config().limits;
    this.buckets.mutating.reconfigure(l.mutatingBurst, l.mutatingRefillPerSecond);
    this.buckets.describe.reconfigure(l.describeBurst, l.describeRefillPerSecond);
  }

  /** Full buckets again. */
  reset(): void {
    this.buckets = this.fresh();
  }

  private fresh(): Record<Category, TokenBucket> {
    const l = this.config().limits;
    return {
      mutating: new TokenBucket(l.mutatingBurst, l.mutatingRefillPerSecond, this.now),
      describe: new TokenBucket(l.describeBurst, l.describeRefillPerSecond, this.now),
    };
  }
}
