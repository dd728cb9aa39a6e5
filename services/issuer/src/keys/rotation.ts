import type { AuditPublisher, Clock, KeySetMirror, Logger, Subjects } from '@aoa/core';
import type { KV } from '@nats-io/kv';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import type { KeyManager } from './key-manager.js';

/** What the emergency path reports, step by step. */
export interface EmergencyRotation {
  retiredKid: string;
  activeKid: string;
  standbyKid: string;
  grants: number;
  reminted: number;
  failedGrants: string[];
  /** Why the re-mint did not complete (empty when it did): agents keep the old, now revoked, credential. */
  remintError: string;
  revocationId: string;
}

export interface KeyRotationDeps {
  keys: KeyManager;
  keySet: KeySetMirror;
  keysKv: KV;
  nc: NatsConnection;
  subjects: Subjects;
  audit: AuditPublisher;
  /** Writes the `kid.<kid>` revocation through the shared write path; never blocked by audit. */
  revokeKid(kid: string, reason: string, by: string): Promise<{ revocationId: string }>;
  /** How long a retired public key stays published: the longest token lifetime policy allows. */
  retainMs(): number;
  /** Scheduled rotation period; 0 turns the schedule off (emergencies still work). */
  intervalMs: number;
  leadMs: number;
  remintTimeoutMs: number;
  clock: Clock;
  log: Logger;
}

/** Clock skew tolerated by verifiers, added before a retired key is unpublished. */
const SKEW_MS = 60_000;
/**
 * Between the last re-minted delivery being stored in `AOA_CREDS` and the old kid's revocation: agents
 * consume from the stream in milliseconds, so a second lets them switch before their old token dies.
 */
const DELIVERY_SETTLE_MS = 1_000;

/**
 * Signing-key rotation in SPIRE's model. On schedule: once the active key has signed for the interval
 * and the standby has been published for at least the lead (a verifier caching the key set for that
 * long already knows it), the standby becomes active and the next standby is published at once.
 * Retired keys stay published until every token they signed has expired. In an emergency the standby
 * takes over at once, every standing grant is re-minted and delivered under it, then the old kid is
 * revoked; with `now` the revocation comes first and the gap is accepted.
 */
export class KeyRotation {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: KeyRotationDeps) {}

  start(): void {
    const periodMs =
      this.deps.intervalMs > 0 ? Math.min(10_000, Math.max(100, this.deps.intervalMs / 10)) : 10_000;
    this.timer = setInterval(() => {
      this.running ??= this.check().finally(() => {
        this.running = undefined;
      });
    }, periodMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One scheduled pass: rotate when due, unpublish retired keys whose tokens have all expired. */
  async check(): Promise<void> {
    try {
      if (this.deps.intervalMs > 0 && this.due()) {
        const switched = await this.deps.keys.activateStandby(this.deps.keys.active().kid);
        this.deps.log.info(switched, 'scheduled signing key rotation');
      }
      await this.unpublishExpired();
    } catch (error) {
      this.deps.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'key rotation check failed',
      );
    }
  }

  private due(): boolean {
    const { keys, keySet, clock, intervalMs, leadMs } = this.deps;
    const now = clock.nowMs();
    const active = keySet.get(keys.active().kid)?.record;
    const standby = keySet.get(keys.standbyKid())?.record;
    if (!active || !standby) return false;
    return (
      (active.activated_ms ?? active.created_ms) + intervalMs <= now && standby.created_ms + leadMs <= now
    );
  }

  private async unpublishExpired(): Promise<void> {
    const { keySet, keysKv, audit, clock, log } = this.deps;
    const cutoff = clock.nowMs() - this.deps.retainMs() - SKEW_MS;
    for (const record of keySet.records()) {
      if (record.state !== 'retired' || (record.retired_ms ?? Number.POSITIVE_INFINITY) > cutoff) continue;
      await audit.publish('key.unpublished', record.kid, {
        kid: record.kid,
        alg: record.alg,
        state: 'unpublished',
      });
      await keysKv.delete(record.kid);
      log.info({ kid: record.kid }, 'retired signing key unpublished');
    }
  }

  /** The emergency path, for an administrator (`by`); every step audited. */
  async emergency(options: { now: boolean; reason: string; by: string }): Promise<EmergencyRotation> {
    const { keys, audit, log } = this.deps;
    const reason = options.reason || 'emergency key rotation';
    // The key to retire is the one the shared ring has active now, not this replica's possibly stale view.
    await keys.sync();
    const oldKid = keys.active().kid;
    let revocationId = '';
    if (options.now) revocationId = (await this.deps.revokeKid(oldKid, reason, options.by)).revocationId;
    await audit.publish('key.rotation.started', oldKid, {
      kid: oldKid,
      now: options.now,
      reason,
      by: options.by,
    });
    const switched = await keys.activateStandby(oldKid);
    log.warn(
      { retired: oldKid, active: switched.active, switchedHere: switched.switched, now: options.now },
      'emergency key rotation',
    );
    const remint = await this.remint(oldKid);
    if (!options.now) {
      if (remint.reminted > 0) await new Promise((r) => setTimeout(r, DELIVERY_SETTLE_MS));
      // Revoked whatever the re-mint did: a possibly compromised key must not outlive a failed re-mint.
      revocationId = (await this.deps.revokeKid(oldKid, reason, options.by)).revocationId;
    }
    const result: EmergencyRotation = {
      retiredKid: oldKid,
      activeKid: switched.active,
      standbyKid: switched.standby,
      grants: remint.grants,
      reminted: remint.reminted,
      failedGrants: remint.failed,
      remintError: remint.error,
      revocationId,
    };
    await audit.publish('key.rotation.completed', oldKid, {
      kid: oldKid,
      active_kid: switched.active,
      grants: remint.grants,
      reminted: remint.reminted,
      failed_grants: remint.failed,
      remint_error: remint.error,
      revocation_id: revocationId,
      by: options.by,
    });
    return result;
  }

  /**
   * Asks a rotator to re-mint every active grant. No rotator running means no standing grants; a
   * rotator that does not answer in time is reported in `error` (the caller still revokes the old key).
   */
  private async remint(
    kid: string,
  ): Promise<{ grants: number; reminted: number; failed: string[]; error: string }> {
    const { nc, subjects, remintTimeoutMs, log } = this.deps;
    try {
      const reply = await nc.request(
        subjects.rotatorRemint(),
        JSON.stringify({ kid, timeout_ms: remintTimeoutMs }),
        {
          timeout: remintTimeoutMs + 5_000,
        },
      );
      const body = reply.json<{ grants?: number; reminted?: number; failed?: string[]; error?: string }>();
      if (body.error || typeof body.grants !== 'number' || typeof body.reminted !== 'number') {
        return {
          grants: 0,
          reminted: 0,
          failed: [],
          error: `rotator could not re-mint: ${body.error ?? 'malformed reply'}`,
        };
      }
      return {
        grants: body.grants,
        reminted: body.reminted,
        failed: Array.isArray(body.failed) ? body.failed : [],
        error: '',
      };
    } catch (error) {
      if (error instanceof errors.RequestError && error.isNoResponders()) {
        log.info({ kid }, 'no rotator running: no standing grants to re-mint');
        return { grants: 0, reminted: 0, failed: [], error: '' };
      }
      log.error({ kid, err: error instanceof Error ? error.message : String(error) }, 'grants not re-minted');
      return { grants: 0, reminted: 0, failed: [], error: 'no rotator finished re-minting in time' };
    }
  }
}
