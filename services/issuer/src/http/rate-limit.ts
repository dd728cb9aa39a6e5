import type { Clock } from '@aoa/core';

/**
 * Token buckets keyed by caller (a client id, a source address): each holds up to `burst` tokens and
 * refills at `perSecond`. In memory, per replica: a limit of N per replica is N times the replica
 * count in all. A `perSecond` of 0 disables the limiter. Idle buckets are dropped, so the map stays
 * bounded by the callers of the last few seconds.
 *
 * @example
 * const limiter = new RateLimiter({ perSecond: 50, burst: 100 }, clock);
 * const wait = limiter.take(clientId); // 0 when allowed, else seconds until a token is available
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private lastSweepMs = 0;
  private readonly burst: number;

  constructor(
    private readonly limits: { perSecond: number; burst?: number },
    private readonly clock: Clock,
    private readonly maxBuckets = 100_000,
  ) {
    this.burst = Math.max(1, limits.burst ?? limits.perSecond * 2);
  }

  /** Takes one token for `key`: 0 when allowed, else the whole seconds to wait (at least 1). */
  take(key: string): number {
    const { perSecond } = this.limits;
    if (perSecond <= 0) return 0;
    const now = this.clock.nowMs();
    this.sweep(now);
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, atMs: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.atMs) / 1000) * perSecond);
    bucket.atMs = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      if (this.buckets.size < this.maxBuckets || this.buckets.has(key)) this.buckets.set(key, bucket);
      return 0;
    }
    this.buckets.set(key, bucket);
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
  }

  /** Drops buckets that have refilled completely: they hold nothing a new bucket would not. */
  private sweep(now: number): void {
    if (now - this.lastSweepMs < 5000) return;
    this.lastSweepMs = now;
    const fullAfterMs = (this.burst / this.limits.perSecond) * 1000;
    for (const [key, bucket] of this.buckets) if (now - bucket.atMs >= fullAfterMs) this.buckets.delete(key);
  }
}
