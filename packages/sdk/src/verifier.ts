import {
  type AoaClaims,
  AppError,
  type Clock,
  createLogger,
  type KeySetMirror,
  type Logger,
  type RevocationMirror,
  systemClock,
  verifyAoaToken,
  verifyDpopProof,
} from '@aoa/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { Counter, Gauge, Registry } from 'prom-client';
import { Freshness } from './freshness.js';
import { MemoryReplayCache } from './replay-cache.js';
import { acquireMirrors } from './shared-mirrors.js';
import { ScopeUsageRecorder } from './usage.js';
import { VerifyError } from './verify-error.js';

export interface VerifierOptions {
  /** The issuer identifier: `iss` must equal it exactly. */
  issuer: string;
  /** This resource server's identifier(s): `aud` must contain one. */
  audience: string | string[];
  /** A connection this verifier may use to read `aoa_keys` and `aoa_revocations`, and publish usage on. */
  nats: NatsConnection;
  /** NATS subject prefix (revocation notices arrive on `<prefix>.revoked.all`); default `aoa`. */
  subjectPrefix?: string;
  /** How long a disconnected verifier keeps serving from its local view; default 30000. */
  stalenessMs?: number;
  /** Seconds a DPoP proof stays acceptable after its `iat`; default 300. */
  dpopWindowSeconds?: number;
  /**
   * How many verified tokens to remember (keyed by the exact token string), so a token presented
   * again skips its signature check; 0 disables. Every hit still re-checks `exp`/`nbf`, that the
   * signing key is still published, DPoP and revocation; a token found revoked is forgotten at once.
   * Default 10000.
   */
  tokenCacheSize?: number;
  /**
   * Milliseconds between scope-usage reports: every successful `verify` with `scopes` is aggregated per
   * (env, app, grant) and published to `<prefix>.usage.<env>.<app>` (body: `ScopeUsageReport`);
   * `close()` publishes the pending window. 0 disables; otherwise it must be positive. Default 60000.
   */
  usageIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Where to register metrics; a fresh registry by default. */
  registry?: Registry;
}

/** What `verify` reads from a request. */
export interface VerifyRequest {
  authorization: string | undefined;
  dpop: string | undefined;
  /** HTTP method, upper case. */
  method: string;
  /** The full URL the client called (scheme, host, path), as it must appear in the proof's `htu`. */
  url: string;
  /**
   * Scopes this request needs, all of which the token's `scope` must contain; a token lacking one is
   * refused with `insufficient_scope` (403) once every other check has passed.
   */
  scopes?: readonly string[];
}

export interface Verifier {
  /** Verifies a request's access token; resolves its claims or rejects with a {@link VerifyError}. */
  verify(request: VerifyRequest): Promise<AoaClaims>;
  /** Resolves once keys and revocations are synchronised. */
  whenReady(): Promise<void>;
  /**
   * Calls `listener` with the KV key of every revocation entry this verifier's mirror applies (after
   * it is applied: a `verify` made in the listener already sees it). Returns an unsubscribe function.
   */
  onRevocationChange(listener: (key: string) => void): () => void;
  /** Why verification would refuse right now, or undefined. */
  notReadyReason(): string | undefined;
  readonly registry: Registry;
  /** Stops the mirrors and the usage timer, publishing the pending scope-usage window first. */
  close(): void;
}

const CLOCK_TOLERANCE_SECONDS = 5;
const AUTHORIZATION = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * A resource server's local verifier: mirrors of `aoa_keys` and `aoa_revocations` fed by KV watches,
 * so `verify` makes no network call. Every verifier on one connection shares those mirrors (one watch
 * per bucket), and each keeps its own token cache, replay cache and freshness. Checks RFC 9068 (`typ`,
 * `iss`, `aud`, `exp`, `nbf`, EdDSA/ES256), the aoa claim shape, RFC 9449 DPoP when the token is bound (Bearer downgrade refused), and every
 * revocation rule over the token and its whole lineage, then the request's required `scopes`
 * (`insufficient_scope` otherwise). Refuses before its first sync and when disconnected longer than
 * `stalenessMs`. Periodically publishes which scopes requests needed, per app (`usageIntervalMs`).
 *
 * @example
 * const verifier = createVerifier({ issuer, audience: 'https://jobs.internal', nats: nc });
 * const claims = await verifier.verify({ authorization, dpop, method: 'GET', url, scopes: ['run:job'] });
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? createLogger({ service: 'verifier', level: 'warn' })).child({
    component: 'verifier',
  });
  const windowSeconds = options.dpopWindowSeconds ?? 300;
  const tokenCacheSize = options.tokenCacheSize ?? 10_000;
  const verifiedTokens = new Map<
    string,
    { claims: AoaClaims; kid: string; key: unknown; scopes: ReadonlySet<string> }
  >();
  const replay = new MemoryReplayCache(clock, (windowSeconds + 10) * 1000);
  const registry = options.registry ?? new Registry();
  const subjectPrefix = options.subjectPrefix ?? 'aoa';
  const usageIntervalMs = options.usageIntervalMs ?? 60_000;
  const usage =
    usageIntervalMs === 0
      ? undefined
      : new ScopeUsageRecorder({
          nats: options.nats,
          subjectPrefix,
          intervalMs: usageIntervalMs,
          clock,
          logger: log,
        });
  usage?.start();
  const verifications = new Counter({
    name: 'aoa_verifier_verifications_total',
    help: 'Verifications by result, error code and (for unavailable) reason',
    labelNames: ['result', 'code', 'reason'] as const,
    registers: [registry],
  });
  let keys: KeySetMirror | undefined;
  let revocations: RevocationMirror | undefined;
  let freshness: Freshness | undefined;
  let closed = false;
  const changeListeners = new Set<(key: string) => void>();
  const notReadyReason = (): string | undefined =>
    closed ? 'verifier_closed' : freshness ? freshness.staleReason() : 'not_synchronised';
  new Gauge({
    name: 'aoa_verifier_ready',
    help: '1 when the verifier can vouch for revocation, 0 when it refuses (not synchronised or stale)',
    registers: [registry],
    collect() {
      this.set(notReadyReason() === undefined ? 1 : 0);
    },
  });
  new Gauge({
    name: 'aoa_verifier_token_cache_entries',
    help: 'Verified tokens remembered (tokenCacheSize bounds it; revoked tokens are dropped)',
    registers: [registry],
    collect() {
      this.set(verifiedTokens.size);
    },
  });
  new Gauge({
    name: 'aoa_verifier_disconnected_seconds',
    help: 'Seconds since the verifier lost NATS (0 while connected and caught up)',
    registers: [registry],
    collect() {
      this.set((freshness?.lagMs() ?? 0) / 1000);
    },
  });

  const shared = acquireMirrors(options.nats, subjectPrefix, log);
  let stopListening = () => {};
  const stopAll = () => {
    stopListening();
    freshness?.stop();
    shared.release();
  };

  const ready = (async () => {
    ({ keys, revocations } = await shared.mirrors);
    if (closed) return;
    stopListening = revocations.onChange((key) => {
      for (const listener of changeListeners) listener(key);
    });
    freshness = new Freshness(options.nats, revocations, clock, options.stalenessMs ?? 30_000, log);
    freshness.start();
  })();
  ready.catch((error: unknown) => log.error({ err: error }, 'verifier could not start its mirrors'));

  const refuse = (error: VerifyError): never => {
    verifications.inc({
      result: 'refused',
      code: error.code,
      reason: error.code === 'unavailable' ? error.reason : '',
    });
    throw error;
  };

  async function verify(request: VerifyRequest): Promise<AoaClaims> {
    if (!request.authorization) return refuse(new VerifyError('missing_token', 'no access token'));
    const match = AUTHORIZATION.exec(request.authorization);
    if (!match?.[1] || !match[2]) {
      return refuse(new VerifyError('invalid_request', 'authorization must be Bearer or DPoP with a token'));
    }
    const scheme = match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const token = match[2];
    const stale = notReadyReason();
    if (stale || !keys || !revocations)
      return refuse(new VerifyError('unavailable', stale ?? 'not_synchronised'));
    let claims: AoaClaims;
    let kid: string;
    // The token's scopes as a set, made once per verified token (kept in the cache with it).
    let scopes: ReadonlySet<string>;
    const cached = verifiedTokens.get(token);
    const nowS = clock.nowMs() / 1000;
    if (
      cached &&
      keys.get(cached.kid)?.key === cached.key &&
      cached.claims.exp > nowS - CLOCK_TOLERANCE_SECONDS &&
      cached.claims.nbf <= nowS + CLOCK_TOLERANCE_SECONDS
    ) {
      ({ claims, kid, scopes } = cached);
    } else {
      if (cached) verifiedTokens.delete(token);
      try {
        ({ claims, kid } = await verifyAoaToken(token, {
          issuer: options.issuer,
          keys,
          clock,
          audience: options.audience,
          clockToleranceSeconds: CLOCK_TOLERANCE_SECONDS,
        }));
      } catch (error) {
        return refuse(new VerifyError('invalid_token', publicReason(error), scheme));
      }
      scopes = new Set(claims.scope.split(' ').filter(Boolean));
      if (tokenCacheSize > 0) {
        if (verifiedTokens.size >= tokenCacheSize) {
          const oldest = verifiedTokens.keys().next().value;
          if (oldest !== undefined) verifiedTokens.delete(oldest);
        }
        verifiedTokens.set(token, { claims, kid, key: keys.get(kid)?.key, scopes });
      }
    }
    if (claims.cnf) {
      if (scheme !== 'DPoP') {
        return refuse(new VerifyError('invalid_token', 'DPoP-bound token presented as Bearer', 'DPoP'));
      }
      if (!request.dpop) return refuse(new VerifyError('invalid_dpop_proof', 'DPoP proof required', 'DPoP'));
      try {
        const jkt = await verifyDpopProof({
          proof: request.dpop,
          htm: request.method.toUpperCase(),
          htu: request.url,
          accessToken: token,
          windowSeconds,
          clock,
          replay,
        });
        if (jkt !== claims.cnf.jkt)
          throw new AppError('unauthenticated', 'DPoP proof: key is not the token binding');
      } catch (error) {
        return refuse(new VerifyError('invalid_dpop_proof', publicReason(error), 'DPoP'));
      }
    } else if (scheme === 'DPoP') {
      return refuse(new VerifyError('invalid_token', 'token is not DPoP-bound', 'DPoP'));
    }
    const hit = revocations.check({ ...claims, kid });
    if (hit) {
      // Forgotten, not kept for refusals: were the revocation ever lifted, it is verified in full again.
      verifiedTokens.delete(token);
      return refuse(
        new VerifyError('invalid_token', `token revoked (${hit.key.split('.')[0]} revocation)`, scheme),
      );
    }
    if (request.scopes && request.scopes.length > 0) {
      const missing = request.scopes.filter((scope) => !scopes.has(scope));
      if (missing.length > 0) {
        return refuse(
          new VerifyError(
            'insufficient_scope',
            `token lacks scope ${missing.join(' ')}`,
            scheme,
            request.scopes.join(' '),
          ),
        );
      }
      usage?.record(claims, request.scopes);
    }
    verifications.inc({ result: 'ok', code: 'ok', reason: '' });
    return claims;
  }

  return {
    verify,
    whenReady: () => ready,
    onRevocationChange: (listener) => {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    notReadyReason,
    registry,
    close: () => {
      closed = true;
      verifiedTokens.clear();
      usage?.stop();
      stopAll();
    },
  };
}

const publicReason = (error: unknown): string =>
  error instanceof AppError && error.code !== 'internal' ? error.message : 'invalid';
