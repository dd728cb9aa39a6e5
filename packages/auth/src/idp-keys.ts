import { AppError } from '@aoa/core';
import { type IdpConfig, TENANT_PLACEHOLDER } from '@aoa/policy';
import { createRemoteJWKSet } from 'jose';
import { TokenReviews } from './token-review.js';

/** How long the kids read from a key set's JWKS are used before they are read again. */
const KIDS_READ_MS = 1000;

/** jose's remote key set: a key resolver with its cache and cooldown, and the JWKS it last fetched. */
export type IdpKeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * Resolves each trusted IdP's JWKS through OIDC discovery (falling back to RFC 8414 metadata), once
 * per issuer, and keeps jose's remote key set for it. The discovery document is the IdP's
 * `discovery_url`, or found under its issuer; a `{tenantid}` issuer (Entra multi-tenant) is looked up
 * under its `common` tenant, whose document names the template itself as its issuer. Beside the key
 * sets it keeps the clusters' TokenReview answers (`reviews`), the other thing asked of an IdP.
 */
export class IdpKeySets {
  private readonly sets = new Map<string, Promise<IdpKeySet>>();
  /** Each key set's kids, read from its JWKS at most once per KIDS_READ_MS (jose clones the JWKS to show it). */
  private readonly kids = new WeakMap<
    IdpKeySet,
    { kids: ReadonlySet<string | undefined>; untilMs: number }
  >();
  readonly reviews: TokenReviews;

  /**
   * @param timeoutMs each discovery, JWKS and TokenReview request
   * @param maxAgeMs how long a fetched JWKS is used before it is fetched again (jose's `cacheMaxAge`)
   */
  constructor(
    private readonly timeoutMs = 3000,
    private readonly maxAgeMs = 600_000,
  ) {
    this.reviews = new TokenReviews(timeoutMs);
  }

  get(idp: Pick<IdpConfig, 'issuer' | 'discoveryUrl'>): Promise<IdpKeySet> {
    const key = `${idp.issuer}\n${idp.discoveryUrl ?? ''}`;
    let set = this.sets.get(key);
    if (!set) {
      set = this.discover(idp.issuer, idp.discoveryUrl);
      this.sets.set(key, set);
      set.catch(() => this.sets.delete(key));
    }
    return set;
  }

  /**
   * Whether the IdP's key set, as last fetched, still holds `kid`. Never fetches in line: a set past
   * its maximum age (`maxAgeMs`) is fetched again in the background, so a key the IdP withdraws stops
   * counting within that age (and the second its kids are read for).
   */
  async publishes(idp: Pick<IdpConfig, 'issuer' | 'discoveryUrl'>, kid: string): Promise<boolean> {
    const set = await this.get(idp);
    if (!set.fresh && !set.reloading) set.reload().catch(() => undefined);
    const nowMs = Date.now();
    let read = this.kids.get(set);
    if (!read || read.untilMs <= nowMs) {
      read = { kids: new Set(set.jwks()?.keys.map((key) => key.kid)), untilMs: nowMs + KIDS_READ_MS };
      this.kids.set(set, read);
    }
    return read.kids.has(kid);
  }

  private async discover(issuer: string, discoveryUrl: string | undefined): Promise<IdpKeySet> {
    const base = issuer.replace(TENANT_PLACEHOLDER, 'common').replace(/\/$/, '');
    const locations = discoveryUrl
      ? [discoveryUrl]
      : ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'].map(
          (path) => `${base}${path}`,
        );
    for (const location of locations) {
      let response: Response;
      try {
        response = await fetch(location, {
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'error',
        });
      } catch {
        throw new AppError('unavailable', `identity provider ${issuer} is unreachable`);
      }
      if (response.status === 404) continue;
      if (!response.ok)
        throw new AppError(
          'unavailable',
          `identity provider ${issuer} answered ${response.status} to discovery`,
        );
      const metadata = (await response.json().catch(() => undefined)) as
        | { issuer?: unknown; jwks_uri?: unknown }
        | undefined;
      if (metadata?.issuer !== issuer || typeof metadata.jwks_uri !== 'string') {
        throw new AppError('unavailable', `identity provider ${issuer} serves invalid discovery metadata`);
      }
      return createRemoteJWKSet(new URL(metadata.jwks_uri), {
        timeoutDuration: this.timeoutMs,
        cooldownDuration: Math.min(30_000, this.maxAgeMs),
        cacheMaxAge: this.maxAgeMs,
      });
    }
    throw new AppError('unavailable', `identity provider ${issuer} has no discovery document`);
  }
}
