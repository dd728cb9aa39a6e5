import {
  type IdpKeySets,
  trustedIdp,
  unverifiedIssuer,
  type VerifiedIdpToken,
  verifyIdpToken,
} from '@aoa/auth';
import {
  type AoaClaims,
  AppError,
  type Clock,
  type KeySetMirror,
  sha256Hex,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  verifyAoaToken,
} from '@aoa/core';
import type { Policy } from '@aoa/policy';

export type VerifiedSubject =
  | ({ kind: 'idp' } & VerifiedIdpToken)
  | { kind: 'aoa'; claims: AoaClaims; kid: string; expMs: number };

/**
 * Verifies subject tokens: an IdP's (discovery + JWKS, issuer, audience, algorithm allow-list) or aoa's
 * own (published keys, RFC 9068 shape). A verified token is cached until it expires (a cluster's with
 * `token_review`, only as long as its TokenReview answer is kept) or its key leaves its JWKS (the IdP's
 * as last fetched, at most its maximum age ago) or aoa_keys, keyed by its hash and the policy hash;
 * revocation and the caller's proof are checked by the caller on every use.
 */
export class SubjectTokenVerifier {
  private readonly cache = new Map<
    string,
    { subject: VerifiedSubject; policyHash: string; untilMs: number }
  >();

  constructor(
    private readonly issuer: string,
    private readonly idpKeys: IdpKeySets,
    private readonly aoaKeys: KeySetMirror,
    private readonly clock: Clock,
    private readonly maxEntries = 10_000,
  ) {}

  async verify(token: string, tokenType: string, policy: Policy): Promise<VerifiedSubject> {
    if (tokenType !== '' && tokenType !== TOKEN_TYPE_JWT && tokenType !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw new AppError(
        'invalid_argument',
        'subject_token_type: only JWT and access-token types are supported',
      );
    }
    const cacheKey = sha256Hex(token);
    const cached = this.cache.get(cacheKey);
    const now = this.clock.nowMs();
    if (
      cached &&
      cached.policyHash === policy.hash &&
      cached.untilMs > now &&
      (await this.keyStillPublished(cached.subject))
    )
      return cached.subject;
    this.cache.delete(cacheKey);
    const subject = await this.verifyUncached(token, policy);
    const review = subject.kind === 'idp' ? subject.idp.tokenReview : undefined;
    const untilMs = review ? Math.min(subject.expMs, now + review.cacheSeconds * 1000) : subject.expMs;
    if (this.cache.size >= this.maxEntries) this.evictExpired();
    if (this.cache.size < this.maxEntries)
      this.cache.set(cacheKey, { subject, policyHash: policy.hash, untilMs });
    return subject;
  }

  /** Whether the key that signed a cached token is still published: in aoa_keys, or in its IdP's JWKS. */
  private async keyStillPublished(subject: VerifiedSubject): Promise<boolean> {
    if (subject.kind === 'aoa') return this.aoaKeys.get(subject.kid) !== undefined;
    return subject.kid === undefined || this.idpKeys.publishes(subject.idp, subject.kid);
  }

  private evictExpired(): void {
    const now = this.clock.nowMs();
    for (const [key, entry] of this.cache) if (entry.untilMs <= now) this.cache.delete(key);
    for (const key of this.cache.keys()) {
      if (this.cache.size < this.maxEntries * 0.9) break;
      this.cache.delete(key);
    }
  }

  private async verifyUncached(token: string, policy: Policy): Promise<VerifiedSubject> {
    const iss = unverifiedIssuer(token);
    if (iss === this.issuer) return this.verifyAoa(token);
    const idp = trustedIdp(policy, iss);
    return { kind: 'idp', ...(await verifyIdpToken(token, idp, this.idpKeys, this.clock)) };
  }

  private async verifyAoa(token: string): Promise<VerifiedSubject> {
    try {
      const { claims, kid } = await verifyAoaToken(token, {
        issuer: this.issuer,
        keys: this.aoaKeys,
        clock: this.clock,
      });
      return { kind: 'aoa', claims, kid, expMs: claims.exp * 1000 };
    } catch (error) {
      if (error instanceof AppError)
        throw new AppError(error.code, error.message.replace(/^access token:/, 'subject token:'));
      throw error;
    }
  }
}
