import { type AoaClaims, actorApp, type Clock, type Logger, Subjects, systemClock } from '@aoa/core';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * One scope-usage report, the JSON body of a message on `<prefix>.usage.<env>.<app>`: the scopes that
 * requests verified in `[from_ms, to_ms)` actually required from tokens issued to `app` in `env`
 * (under grant `grant_id` when the token carries `aoa_grant`).
 *
 * @example
 * { "env": "prod", "app": "dashboards", "scopes": ["read:metrics"], "from_ms": 1764482000000, "to_ms": 1764482060000 }
 */
export interface ScopeUsageReport {
  env: string;
  /** The app the token was issued to (its current actor `app:<app>`). */
  app: string;
  /** The token's `aoa_grant`; absent for tokens not minted from a grant. */
  grant_id?: string;
  /** Required scopes seen in the window, sorted and unique. */
  scopes: string[];
  /** Window start, epoch milliseconds. */
  from_ms: number;
  /** Window end (the flush), epoch milliseconds. */
  to_ms: number;
}

export interface ScopeUsageOptions {
  /** The connection reports are published on (core NATS, best effort). */
  nats: NatsConnection;
  /** NATS subject prefix; default `aoa`. */
  subjectPrefix?: string;
  /** Milliseconds between flushes by {@link ScopeUsageRecorder.start}; must be positive. */
  intervalMs: number;
  clock?: Clock;
  logger?: Logger;
  /** Most distinct (env, app, grant) aggregates per window; new ones beyond are dropped. Default 10000. */
  maxAggregates?: number;
}

interface Aggregate {
  subject: string;
  env: string;
  app: string;
  grant: string | undefined;
  scopes: Set<string>;
}

/**
 * Aggregates, per (env, app, grant), the scopes that successful verifications required, and publishes
 * one {@link ScopeUsageReport} per aggregate every `intervalMs` (nothing for an empty window), so an
 * auditor can tell which granted scopes are never exercised. Publishing never throws: failures are
 * logged. Memory is bounded by `maxAggregates` per window. {@link createVerifier} runs one when
 * `usageIntervalMs` is not 0.
 *
 * @example
 * const usage = new ScopeUsageRecorder({ nats: nc, intervalMs: 60_000 });
 * usage.start();
 * usage.record(claims, ['read:metrics']);
 * usage.stop(); // publishes the pending window
 */
export class ScopeUsageRecorder {
  private readonly subjects: Subjects;
  private readonly clock: Clock;
  private readonly maxAggregates: number;
  private aggregates = new Map<string, Aggregate>();
  private windowStartMs: number;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ScopeUsageOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) {
      throw new TypeError(
        `usage interval must be a positive number of milliseconds, got ${options.intervalMs}`,
      );
    }
    this.subjects = new Subjects(options.subjectPrefix ?? 'aoa');
    this.clock = options.clock ?? systemClock;
    this.maxAggregates = options.maxAggregates ?? 10_000;
    this.windowStartMs = Math.floor(this.clock.nowMs());
  }

  /**
   * Records that a request verified with `claims` required `scopes`. Ignored when `scopes` is empty,
   * the actor is not an app, env or app is not a valid subject token, or the recorder is stopped.
   */
  record(claims: AoaClaims, scopes: readonly string[]): void {
    if (this.stopped || scopes.length === 0) return;
    const app = actorApp(claims.act.sub);
    if (app === undefined) return;
    const grant = claims.aoa_grant;
    const key = `${claims.env}\n${app}\n${grant ?? ''}`;
    let aggregate = this.aggregates.get(key);
    if (!aggregate) {
      if (this.aggregates.size >= this.maxAggregates) {
        this.dropped += 1;
        return;
      }
      let subject: string;
      try {
        subject = this.subjects.usage(claims.env, app);
      } catch {
        return;
      }
      aggregate = { subject, env: claims.env, app, grant, scopes: new Set() };
      this.aggregates.set(key, aggregate);
    }
    for (const scope of scopes) aggregate.scopes.add(scope);
  }

  /** Publishes one report per aggregate of the current window, then starts a new window. */
  flush(): void {
    const fromMs = this.windowStartMs;
    const toMs = Math.floor(this.clock.nowMs());
    const aggregates = this.aggregates;
    const dropped = this.dropped;
    this.aggregates = new Map();
    this.dropped = 0;
    this.windowStartMs = toMs;
    const log = this.options.logger;
    if (dropped > 0) {
      log?.warn(
        { dropped, max: this.maxAggregates },
        'scope usage: too many (env, app, grant) aggregates in one window; the rest went unreported',
      );
    }
    let failed = 0;
    let lastError: unknown;
    for (const aggregate of aggregates.values()) {
      const report: ScopeUsageReport = {
        env: aggregate.env,
        app: aggregate.app,
        ...(aggregate.grant !== undefined ? { grant_id: aggregate.grant } : {}),
        scopes: [...aggregate.scopes].sort(),
        from_ms: fromMs,
        to_ms: toMs,
      };
      try {
        this.options.nats.publish(aggregate.subject, JSON.stringify(report));
      } catch (error) {
        failed += 1;
        lastError = error;
      }
    }
    if (failed > 0) {
      log?.warn({ err: lastError, failed }, 'scope usage: could not publish reports');
    }
  }

  /** Flushes every `intervalMs` on a timer that does not keep the process alive. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.windowStartMs = Math.floor(this.clock.nowMs());
    this.timer = setInterval(() => this.flush(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Publishes the pending window once and stops; later records are ignored. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
