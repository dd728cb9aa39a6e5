import type { Clock, Logger, RevocationMirror } from '@aoa/core';
import type { NatsConnection } from '@nats-io/transport-node';

/** Why a verifier cannot vouch for revocation right now, or undefined when it can. */
export type StaleReason = 'not_synchronised' | 'disconnected_too_long' | 'connection_closed';

/**
 * Tracks how current the local revocation view is. It is current once synchronised and while NATS is
 * connected; after a disconnect it stays acceptable for `stalenessMs`, and after a reconnect it is
 * current again only once the mirror has caught up with everything the bucket holds (so a notice
 * missed while away never leaves a revoked token accepted).
 */
export class Freshness {
  private disconnectedSinceMs: number | undefined;
  private closed = false;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly revocations: RevocationMirror,
    private readonly clock: Clock,
    private readonly stalenessMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.nc.closed().then(() => {
      this.closed = true;
    });
    void (async () => {
      for await (const status of this.nc.status()) {
        if (this.stopped) break;
        if (status.type === 'disconnect') {
          this.disconnectedSinceMs ??= this.clock.nowMs();
          this.log.warn(
            'verifier disconnected from NATS; serving from the local view within the staleness bound',
          );
        } else if (status.type === 'reconnect') {
          void this.catchUp();
        }
      }
    })().catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Undefined when verification may proceed; otherwise why not. */
  staleReason(): StaleReason | undefined {
    if (this.closed) return 'connection_closed';
    if (!this.revocations.ready()) return 'not_synchronised';
    if (
      this.disconnectedSinceMs !== undefined &&
      this.clock.nowMs() - this.disconnectedSinceMs > this.stalenessMs
    ) {
      return 'disconnected_too_long';
    }
    return undefined;
  }

  /** Milliseconds since the view was last known current (0 while connected). */
  lagMs(): number {
    return this.disconnectedSinceMs === undefined ? 0 : this.clock.nowMs() - this.disconnectedSinceMs;
  }

  private async catchUp(): Promise<void> {
    for (let attempt = 0; attempt < 50 && !this.stopped; attempt++) {
      try {
        if (await this.revocations.catchUp(5000)) {
          this.disconnectedSinceMs = undefined;
          this.log.info('verifier reconnected and caught up with aoa_revocations');
          return;
        }
      } catch {
        // the bucket may not answer for a moment after a server restart
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
