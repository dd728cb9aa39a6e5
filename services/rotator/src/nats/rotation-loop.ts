import {
  AppError,
  type AuditPublisher,
  type Clock,
  type ErrorCode,
  type GrantRecord,
  grantExpired,
  type Logger,
  type Subjects,
  toAppError,
} from '@aoa/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type MintedDelivery, parseMintReply } from '../domain/mint-reply.js';
import { mayTick, retryDelayMs, rotationDelayMs } from '../domain/schedule.js';
import type { RotatorMetrics } from '../metrics.js';
import type { GrantStore } from './grant-store.js';

export interface RotationLoopDeps {
  store: GrantStore;
  nc: NatsConnection;
  js: JetStreamClient;
  subjects: Subjects;
  /** Every delivery is audited (`credential.delivered`); an unacknowledged one fails the rotation. */
  audit: AuditPublisher;
  /** This replica's lease holder id. */
  holder: string;
  /** How long a taken lease keeps other replicas off a grant. */
  leaseMs: number;
  scanMs: number;
  mintTimeoutMs: number;
  clock: Clock;
  log: Logger;
  metrics: RotatorMetrics;
}

/**
 * Scans the grants every `scanMs`; for each active grant that is due and whose lease this replica can
 * take (compare-and-set, so each tick happens once across replicas, and a crashed replica's grants
 * are taken over when its lease runs out), asks the issuer to mint and publishes the encrypted
 * deliveries to `AOA_CREDS`. Failures are logged, counted and retried with backoff; nothing stops
 * the loop but `stop()`.
 */
export class RotationLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private again = false;
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<string>();

  constructor(private readonly deps: RotationLoopDeps) {}

  start(): void {
    this.schedule(0);
  }

  /** Scans now (RotateNow, an enrolment) instead of waiting for the next period. */
  kick(): void {
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.boundedScan().finally(() => {
        this.running = undefined;
        this.schedule(this.again ? 0 : this.deps.scanMs);
        this.again = false;
      });
    }, delayMs);
  }

  /**
   * A scan that cannot stall the loop: the grants come from the local mirror, and a scan whose ticks
   * do not settle (a NATS call that never answers) is abandoned after twice the mint timeout, counted,
   * and the next scan starts. An abandoned scan starts no more ticks; those it has running finish.
   */
  private async boundedScan(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limitMs = this.deps.mintTimeoutMs * 2;
    const stalled = new Promise<'stalled'>((resolve) => {
      timer = setTimeout(() => resolve('stalled'), limitMs);
    });
    const scan = { abandoned: false };
    const outcome = await Promise.race([this.scan(scan), stalled]);
    clearTimeout(timer);
    if (outcome === 'stalled') {
      scan.abandoned = true;
      this.deps.metrics.loopErrors.inc();
      this.deps.log.warn({ limitMs }, 'rotation scan stalled; starting the next one');
    }
  }

  private async scan(scan: { abandoned: boolean }): Promise<void> {
    const { store, clock, log, metrics } = this.deps;
    try {
      const nowS = clock.nowMs() / 1000;
      const grants = store.listGrants().filter((g) => g.state === 'active' && !grantExpired(g, nowS));
      const lags = (
        await mapBounded(grants, MAX_CONCURRENT_TICKS, (grant) =>
          scan.abandoned ? Promise.resolve(undefined) : this.tickGrant(grant),
        )
      ).filter((lag): lag is number => lag !== undefined);
      metrics.grantsHeld.set(lags.length);
      metrics.maxLag.set(lags.length > 0 ? Math.max(...lags) : 0);
    } catch (error) {
      metrics.loopErrors.inc();
      log.warn({ err: toAppError(error).message }, 'rotation scan failed; retrying next period');
    }
  }

  /**
   * Rotates one grant if due and leasable; when this replica ticked it, how late after its due time
   * (seconds), else undefined.
   */
  private async tickGrant(grant: GrantRecord): Promise<number | undefined> {
    const { store, clock, holder, leaseMs, log, metrics } = this.deps;
    // A grant still rotating (from a scan abandoned as stalled) is never ticked twice by this replica:
    // its lease is this replica's and still due, so the compare-and-set alone would let it through.
    if (this.inFlight.has(grant.id)) return undefined;
    this.inFlight.add(grant.id);
    try {
      const lease = store.lease(grant.id);
      if (!mayTick(lease?.record, holder, clock.nowMs())) return undefined;
      const avoidKid = lease?.record.avoid_kid;
      const avoiding = avoidKid === undefined ? {} : { avoid_kid: avoidKid };
      const claimed = await store.casLease(
        grant.id,
        {
          holder,
          until_ms: clock.nowMs() + leaseMs,
          next_due_ms: lease?.record.next_due_ms ?? 0,
          ...avoiding,
        },
        lease?.revision,
      );
      if (claimed === undefined) return undefined;
      const grantLog = log.child({ grant: grant.id });
      const dueMs = lease?.record.next_due_ms ?? 0;
      const lagSeconds = dueMs > 0 ? Math.max(0, clock.nowMs() - dueMs) / 1000 : 0;
      let nextDue: number;
      let rotatedMs = lease?.record.rotated_ms;
      let rotated = false;
      try {
        const count = await this.rotate(grant, avoidKid);
        rotated = true;
        this.failures.delete(grant.id);
        metrics.rotations.inc({ result: 'ok' });
        metrics.rotationLag.observe(lagSeconds);
        rotatedMs = clock.nowMs();
        nextDue = rotatedMs + rotationDelayMs(grant.token_ttl_seconds);
        grantLog.info({ deliveries: count }, 'grant rotated');
      } catch (error) {
        const failures = (this.failures.get(grant.id) ?? 0) + 1;
        this.failures.set(grant.id, failures);
        const appError = toAppError(error);
        metrics.rotations.inc({ result: refused(appError.code) ? 'refused' : 'failed' });
        nextDue =
          clock.nowMs() +
          retryDelayMs(
            failures,
            rotationDelayMs(grant.token_ttl_seconds, () => 0.5),
          );
        grantLog.warn({ code: appError.code, reason: appError.message, failures }, 'grant rotation failed');
      }
      // Loses to a concurrent markDue (then the grant is due again at once), never to another holder.
      await store.casLease(
        grant.id,
        {
          holder,
          until_ms: clock.nowMs() + leaseMs,
          next_due_ms: nextDue,
          ...(rotatedMs === undefined ? {} : { rotated_ms: rotatedMs }),
          // A failed re-mint still must not be signed with the retired key when it is retried.
          ...(rotated ? {} : avoiding),
        },
        claimed,
      );
      return lagSeconds;
    } catch (error) {
      log.warn({ grant: grant.id, err: toAppError(error).message }, 'grant tick failed');
      return undefined;
    } finally {
      this.inFlight.delete(grant.id);
    }
  }

  /**
   * Mints through the issuer (never signed with `avoidKid`, the key an emergency rotation retires) and
   * publishes every delivery (pipelined); returns how many.
   */
  private async rotate(grant: GrantRecord, avoidKid: string | undefined): Promise<number> {
    const { nc, js, subjects, metrics } = this.deps;
    let reply: Uint8Array;
    try {
      const request = {
        grant_id: grant.id,
        min_revision: this.deps.store.revision(),
        ...(avoidKid === undefined ? {} : { not_kid: avoidKid }),
      };
      const msg = await nc.request(subjects.issuerMint(), JSON.stringify(request), {
        timeout: this.deps.mintTimeoutMs,
      });
      reply = msg.data;
    } catch (error) {
      throw new AppError('unavailable', 'issuer mint unavailable', { cause: error });
    }
    const deliveries: MintedDelivery[] = parseMintReply(reply);
    await Promise.all(
      deliveries.map(async (d) => {
        const subject = subjects.creds(grant.env, grant.app, d.agent);
        const stored = await js.publish(
          subject,
          JSON.stringify({ grant_id: grant.id, agent: d.agent, jti: d.jti, exp: d.exp, jwe: d.jwe }),
          { msgID: d.jti },
        );
        await this.deps.audit.publish('credential.delivered', d.jti, {
          grant_id: grant.id,
          child: grant.app,
          env: grant.env,
          agent: d.agent,
          jti: d.jti,
          exp: d.exp,
          stream_seq: stored.seq,
        });
      }),
    );
    metrics.deliveries.inc(deliveries.length);
    return deliveries.length;
  }
}

/**
 * Grants rotated at once by one replica: enough to keep the issuer's mint pipeline full, few enough
 * that a scan of thousands of due grants (an emergency re-mint) does not time out its own requests.
 */
const MAX_CONCURRENT_TICKS = 64;

/** `fn` over `items`, at most `limit` at a time; results in input order. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const refused = (code: ErrorCode): boolean =>
  code === 'permission_denied' || code === 'failed_precondition' || code === 'not_found';
