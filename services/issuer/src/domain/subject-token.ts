import {
  type AoaClaims,
  AppError,
  type Clock,
  joseReason,
  type KeySetMirror,
  sha256Hex,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  verifyAoaToken,
} from '@aoa/core';
import type { IdpConfig, Policy } from '@aoa/policy';
import { decodeJwt, errors, jwtVerify } from 'jose';

import type { IdpKeySets } from './idp-keys.js';

export const MAX_TOKEN_BYTES = 16 * 1024;

export type VerifiedSubject =
  | {
      kind: 'idp';
      idp: IdpConfig;
      sub: string;
      groups: string[];
      expMs: number;
      /** RFC 8693 `may_act.sub`: when present, the only party allowed to present this token. */
      mayAct?: string;
    }
  | { kind: 'aoa'; claims: AoaClaims; kid: string; expMs: number };

/**
 * Verifies subject tokens: an IdP's (discovery + JWKS, issuer, audience, algorithm allow-list) or aoa's
 * own (published keys, RFC 9068 shape). A verified token is cached until it expires, keyed by its hash
 * and the policy hash; revocation and the caller's proof are checked by the caller on every use.
 */
export class SubjectTokenVerifier {
  private readonly cache = new Map<string, { subject: VerifiedSubject; policyHash: string }>();

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
    if (cached && cached.policyHash === policy.hash && cached.subject.expMs > this.clock.nowMs()) {
      return cached.subject;
    }
    this.cache.delete(cacheKey);
    const subject = await this.verifyUncached(token, policy);
    if (this.cache.size >= this.maxEntries) this.evictExpired();
    if (this.cache.size < this.maxEntries) this.cache.set(cacheKey, { subject, policyHash: policy.hash });
    return subject;
  }

  private evictExpired(): void {
    const now = this.clock.nowMs();
    for (const [key, entry] of this.cache) if (entry.subject.expMs <= now) this.cache.delete(key);
    for (const key of this.cache.keys()) {
      if (this.cache.size < this.maxEntries * 0.9) break;
      this.cache.delete(key);
    }
  }

  private async verifyUncached(token: string, policy: Policy): Promise<VerifiedSubject> {
    if (token.length > MAX_TOKEN_BYTES)
      throw new AppError('invalid_argument', `subject_token: larger than ${MAX_TOKEN_BYTES} bytes`);
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new AppError('unauthenticated', 'subject token: malformed (not a compact JWT)');
    }
    if (iss === this.issuer) return this.verifyAoa(token);
    const idp = policy.idps.find((i) => i.issuer === iss);
    if (!idp) throw new AppError('unauthenticated', 'subject token: issuer is not a trusted IdP');
    return this.verifyIdp(token, idp);
  }

  private async verifyIdp(token: string, idp: IdpConfig): Promise<VerifiedSubject> {
    const keys = await this.idpKeys.get(idp.issuer);
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: idp.issuer,
        audience: idp.audience,
        algorithms: idp.algorithms,
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(this.clock.nowMs()),
        clockTolerance: 5,
      });
      const rawGroups = payload[idp.groupsClaim];
      const groups = Array.isArray(rawGroups)
        ? rawGroups.filter((g): g is string => typeof g === 'string')
        : [];
      const mayAct = mayActSubject(payload.may_act);
      return {
        kind: 'idp',
        idp,
        sub: payload.sub as string,
        groups,
        expMs: (payload.exp as number) * 1000,
        ...(mayAct === undefined ? {} : { mayAct }),
      };
    } catch (error) {
      throw idpError(error, idp);
    }
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

/**
 * Reads `may_act.sub` (RFC 8693 section 4.4). A `may_act` that is present but names no subject is
 * kept as an empty string, so it matches no caller: a malformed restriction never widens access.
 */
function mayActSubject(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) return '';
  const sub = (value as { sub?: unknown }).sub;
  return typeof sub === 'string' ? sub : '';
}

function idpError(error: unknown, idp: IdpConfig): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof errors.JWKSTimeout)
    return new AppError('unavailable', `identity provider ${idp.namespace}: JWKS fetch timed out`);
  if (error instanceof errors.JWKSInvalid)
    return new AppError('unavailable', `identity provider ${idp.namespace} serves an invalid JWKS`);
  if (error instanceof errors.JOSEError) {
    if (error.code === 'ERR_JOSE_GENERIC' || error.code === 'ERR_JWKS_INVALID') {
      return new AppError('unavailable', `identity provider ${idp.namespace}: JWKS unavailable`);
    }
    return new AppError('unauthenticated', `subject token: ${joseReason(error)}`);
  }
  return new AppError('unavailable', `identity provider ${idp.namespace}: JWKS unavailable`);
}
