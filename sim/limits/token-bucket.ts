/**
 * EC2's request throttling: a token bucket per account and region per API category (mutating 50 burst
 * / 5 per s, describe 100 / 20 per s). An empty bucket → RequestLimitExceeded.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private burst: number,
    private refillPerSecond: number,
    private readonly now: () => number
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** New limits keep the tokens there are; a larger burst adds its extra capacity at once, a smaller one caps. */
  reconfigure(burst: number, refillPerSecond: number): void {
    this.refill();
    this.tokens = Math.min(burst, this.tokens + Math.max(0, burst - this.burst));
    this.burst = burst;
    this.refillPerSecond = refillPerSecond;
  }

  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.refillPerSecond);
    this.last = now;
  }
}
