/**
 * When a grant rotates next: at half its token TTL with +-10% jitter (SPIRE's rule), so a fresh
 * credential arrives while the current one still has about half its life, and replicas' ticks spread.
 *
 * @example
 * const dueMs = nowMs + rotationDelayMs(grant.token_ttl_seconds);
 */
export function rotationDelayMs(tokenTtlSeconds: number, random: () => number = Math.random): number {
  const half = (tokenTtlSeconds * 1000) / 2;
  const jitter = (random() * 2 - 1) * 0.1;
  return Math.max(100, Math.round(half * (1 + jitter)));
}

/** Backoff after consecutive failures of one grant: 500 ms doubling, capped at `capMs`. */
export function retryDelayMs(failures: number, capMs: number): number {
  return Math.min(capMs, 500 * 2 ** Math.max(0, Math.min(failures - 1, 16)));
}

/** A rotation lease as stored under `lease.<grant>`: who ticks the grant, until when, and when next. */
export interface LeaseRecord {
  holder: string;
  until_ms: number;
  next_due_ms: number;
  /** When the grant was last minted and delivered; an emergency key rotation waits for it to pass. */
  rotated_ms?: number;
  /** The key an emergency rotation retires: the next mint must not be signed with it. */
  avoid_kid?: string;
}

/** Whether `holder` may tick the grant now: it is due, and the lease is free, expired or its own. */
export function mayTick(lease: LeaseRecord | undefined, holder: string, nowMs: number): boolean {
  if (!lease) return true;
  if (lease.next_due_ms > nowMs) return false;
  return lease.holder === holder || lease.until_ms <= nowMs;
}
