import { AppError } from '@aoa/core';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';

/**
 * Resolves each trusted IdP's JWKS through OIDC discovery (falling back to RFC 8414 metadata), once
 * per issuer, and keeps jose's remote key set (with its cache and cooldown) for it.
 */
export class IdpKeySets {
  private readonly sets = new Map<string, Promise<JWTVerifyGetKey>>();

  constructor(private readonly timeoutMs = 3000) {}

  get(issuer: string): Promise<JWTVerifyGetKey> {
    let set = this.sets.get(issuer);
    if (!set) {
      set = this.discover(issuer);
      this.sets.set(issuer, set);
      set.catch(() => this.sets.delete(issuer));
    }
    return set;
  }

  private async discover(issuer: string): Promise<JWTVerifyGetKey> {
    const base = issuer.replace(/\/$/, '');
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      let response: Response;
      try {
        response = await fetch(`${base}${path}`, {
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
        cooldownDuration: 30_000,
      });
    }
    throw new AppError('unavailable', `identity provider ${issuer} has no discovery document`);
  }
}
