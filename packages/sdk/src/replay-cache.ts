import { AppError, type Clock } from '@aoa/core';

/**
 * A verifier-local DPoP replay guard: each proof `jti` (per key) is accepted once while its proof could
 * still be fresh. Local is enough for a resource server: a proof names its `htu`, so it can only be
 * replayed against this resource; several replicas behind one URL should share `aoa_replay` instead.
 */
export class MemoryReplayCache {
  private readonly seen = new Map<string, number>();
  private lastSweepMs = 0;

  constructor(
    private readonly clock: Clock,
    /** How long a claimed jti is remembered: the proof window plus the allowed future skew. */
    private readonly rememberMs: number,
    private readonly maxEntries = 1_000_000,
  ) {}

  /** Throws `unauthenticated` when `jti` was already claimed for this key. */
  async claim(kind: 'ca' | 'dpop', issuer: string, jti: string): Promise<void> {
    const now = this.clock.nowMs();
    this.sweep(now);
    const key = `${kind}\n${issuer}\n${jti}`;
    const until = this.seen.get(key);
    if (until !== undefined && until > now)
      throw new AppError('unauthenticated', 'DPoP proof: jti was already used (replay)');
    if (this.seen.size >= this.maxEntries) throw new AppError('unavailable', 'DPoP replay cache full');
    this.seen.set(key, now + this.rememberMs);
  }

  private sweep(now: number): void {
    if (now - this.lastSweepMs < 1000) return;
    this.lastSweepMs = now;
    for (const [key, until] of this.seen) if (until <= now) this.seen.delete(key);
  }
}
