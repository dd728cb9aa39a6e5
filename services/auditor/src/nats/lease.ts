import type { Clock, Logger } from '@aoa/core';
import type { KV } from '@nats-io/kv';

export const LEASE_BUCKET = 'aoa_auditor_lease';
const KEY = 'writer';

interface LeaseValue {
  holder: string;
  expires_ms: number;
}

/**
 * The single-writer lease: one KV key updated with compare-and-set, its expiry kept in the value (2.9
 * has no per-key TTL). The holder renews it; a standby takes it once it has lapsed.
 */
export class WriterLease {
  private revision = 0;
  /** The KV revision at which this instance last took the lease (not renewed it): its writer epoch. */
  epoch = 0;

  constructor(
    private readonly kv: KV,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Takes or renews the lease; true when this instance holds it afterwards. */
  async tryAcquire(): Promise<boolean> {
    const value = (): Uint8Array =>
      new TextEncoder().encode(
        JSON.stringify({
          holder: this.holder,
          expires_ms: this.clock.nowMs() + this.ttlMs,
        } satisfies LeaseValue),
      );
    try {
      const entry = await this.kv.get(KEY);
      const held = entry?.operation === 'PUT' ? entry.json<LeaseValue>() : undefined;
      if (held && held.holder !== this.holder && held.expires_ms > this.clock.nowMs()) return false;
      const renewal =
        this.revision !== 0 && held?.holder === this.holder && entry?.revision === this.revision;
      this.revision = entry
        ? await this.kv.update(KEY, value(), entry.revision)
        : await this.kv.create(KEY, value());
      if (!renewal) this.epoch = this.revision;
      return true;
    } catch (error) {
      this.log.debug({ err: error instanceof Error ? error.message : String(error) }, 'lease not taken');
      return false;
    }
  }

  /** Lets a standby take over at once (graceful stop); only if this instance still holds it. */
  async release(): Promise<void> {
    if (this.revision === 0) return;
    try {
      const released = JSON.stringify({ holder: this.holder, expires_ms: 0 } satisfies LeaseValue);
      await this.kv.update(KEY, new TextEncoder().encode(released), this.revision);
    } catch {
      // Someone else holds it already.
    }
    this.revision = 0;
  }
}
