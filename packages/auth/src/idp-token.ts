import { AppError, type Clock, joseReason } from '@aoa/core';
import { type ClientConfig, findIdpByIssuer, type IdpConfig, mayPresent, type Policy } from '@aoa/policy';
import { decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';
import type { IdpKeySets } from './idp-keys.js';
import {
  assertProfileClaims,
  assertTokenType,
  expectedIssuer,
  LEGACY_KUBERNETES_ISSUER,
} from './profile-claims.js';

/** Largest subject token accepted, before any parsing. */
export const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;

/** An IdP identity proved by a subject token. */
export interface VerifiedIdpToken {
  idp: IdpConfig;
  /** The value of the IdP's subject claim (`sub`, or `oid` for Entra). */
  sub: string;
  groups: string[];
  /** The verified payload, for claim conditions. */
  claims: JWTPayload;
  expMs: number;
  /** The `kid` of the key that signed it, when its header names one. */
  kid?: string;
  /** RFC 8693 `may_act.sub`: when present, the only party allowed to present this token. */
  mayAct?: string;
}

/**
 * The `iss` of a compact JWT, read without verifying anything (to choose the keys that will).
 *
 * @example
 * const iss = unverifiedIssuer(subjectToken); // 'https://idp.example.com'
 * @throws AppError `invalid_argument` when too large, `unauthenticated` when not a compact JWT
 */
export function unverifiedIssuer(token: string): unknown {
  if (token.length > MAX_SUBJECT_TOKEN_BYTES) {
    throw new AppError('invalid_argument', `subject_token: larger than ${MAX_SUBJECT_TOKEN_BYTES} bytes`);
  }
  try {
    return decodeJwt(token).iss;
  } catch {
    throw new AppError('unauthenticated', 'subject token: malformed (not a compact JWT)', {
      reason: 'SUBJECT_TOKEN_INVALID',
    });
  }
}

/**
 * The policy's trusted IdP whose issuer is `iss` (as `unverifiedIssuer` read it).
 *
 * @example
 * const idp = trustedIdp(policy, unverifiedIssuer(token));
 * @throws AppError `unauthenticated` when no trusted IdP has that issuer
 */
export function trustedIdp(policy: Policy, iss: unknown): IdpConfig {
  if (iss === LEGACY_KUBERNETES_ISSUER) {
    throw new AppError(
      'unauthenticated',
      'subject token: a legacy secret-based service-account token never expires and is refused; mount a projected service-account token (serviceAccountToken volume) instead',
      { reason: 'LEGACY_SERVICE_ACCOUNT_TOKEN' },
    );
  }
  const idp = typeof iss === 'string' ? findIdpByIssuer(policy, iss) : undefined;
  if (!idp) {
    throw new AppError('unauthenticated', 'subject token: issuer is not a trusted IdP', {
      reason: 'UNTRUSTED_ISSUER',
    });
  }
  return idp;
}

/**
 * Verifies an IdP's token as a subject token: the IdP's keys (OIDC discovery + JWKS), its issuer (a
 * `{tenantid}` template filled with an accepted tenant) and audience, its algorithm allow-list and
 * `typ` headers, `exp`, the subject claim and the profile's required claims, `iat` no later than the
 * IdP's clock skew allows, the profile's own checks and, for a cluster with `token_review`, that its
 * API server still accepts the token; reads its groups claims and `may_act`.
 *
 * @example
 * const subject = await verifyIdpToken(token, findIdpByIssuer(policy, iss), keys, clock);
 */
export async function verifyIdpToken(
  token: string,
  idp: IdpConfig,
  keys: IdpKeySets,
  clock: Clock,
): Promise<VerifiedIdpToken> {
  try {
    const issuer = expectedIssuer(idp, unverifiedIssuer(token));
    const keySet = await keys.get(idp);
    const { payload, protectedHeader } = await jwtVerify(token, keySet, {
      issuer,
      audience: idp.audience,
      algorithms: idp.algorithms,
      requiredClaims: ['exp', idp.subjectClaim, ...idp.requiredClaims],
      currentDate: new Date(clock.nowMs()),
      clockTolerance: idp.clockSkewSeconds,
    });
    assertIssuedInThePast(payload.iat, idp, clock);
    assertTokenType(protectedHeader.typ, idp);
    assertProfileClaims(payload, idp, issuer, { keySet, kid: protectedHeader.kid });
    if (idp.tokenReview)
      await keys.reviews.assertAccepted(token, { ...idp, tokenReview: idp.tokenReview }, payload, clock);
    const sub = payload[idp.subjectClaim];
    if (typeof sub !== 'string' || sub === '') {
      throw new AppError('unauthenticated', `subject token: ${idp.subjectClaim} must be a non-empty string`, {
        reason: 'SUBJECT_TOKEN_INVALID',
      });
    }
    const mayAct = mayActSubject(payload.may_act);
    return {
      idp,
      sub,
      groups: idp.groupsClaims.flatMap((claim) => stringsOf(payload[claim])),
      claims: payload,
      expMs: (payload.exp as number) * 1000,
      ...(protectedHeader.kid === undefined ? {} : { kid: protectedHeader.kid }),
      ...(mayAct === undefined ? {} : { mayAct }),
    };
  } catch (error) {
    throw idpError(error, idp);
  }
}

const stringsOf = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

/**
 * Verifies a subject token that must come from one of the policy's trusted IdPs.
 *
 * @example
 * const subject = await verifyPolicyIdpToken(token, policy, keys, clock);
 * `idp:${subject.idp.namespace}:${subject.sub}`;
 */
export async function verifyPolicyIdpToken(
  token: string,
  policy: Policy,
  keys: IdpKeySets,
  clock: Clock,
): Promise<VerifiedIdpToken> {
  return verifyIdpToken(token, trustedIdp(policy, unverifiedIssuer(token)), keys, clock);
}

/**
 * Refuses a client presenting an IdP identity it may not present: the token's `may_act` must name the
 * client when present, and the client's `may_present` must list the identity (no confused deputy).
 *
 * @example
 * assertMayPresent(policy, client, subject); // throws AppError permission_denied
 */
export function assertMayPresent(policy: Policy, client: ClientConfig, subject: VerifiedIdpToken): void {
  if (
    subject.mayAct !== undefined &&
    subject.mayAct !== client.id &&
    subject.mayAct !== `client:${client.id}`
  ) {
    throw new AppError('permission_denied', `subject token's may_act does not name client ${client.id}`, {
      reason: 'MAY_ACT_MISMATCH',
    });
  }
  const identity = { idp: subject.idp.namespace, sub: subject.sub, groups: subject.groups };
  const allowed = mayPresent(policy, client.id, identity);
  if (!allowed.ok) {
    throw new AppError('permission_denied', allowed.reason, {
      reason: 'MAY_NOT_PRESENT',
      constraint: 'clients.may_present',
    });
  }
}

/** jose checks `iat` only against a maximum age; a token from the future is refused here. */
function assertIssuedInThePast(iat: unknown, idp: IdpConfig, clock: Clock): void {
  if (typeof iat !== 'number') return;
  const aheadSeconds = iat - clock.nowMs() / 1000;
  if (aheadSeconds > idp.clockSkewSeconds) {
    throw new AppError(
      'unauthenticated',
      `subject token: issued ${Math.ceil(aheadSeconds)}s in the future (identity provider ${idp.namespace} allows clock_skew ${idp.clockSkewSeconds}s)`,
      { reason: 'SUBJECT_TOKEN_FROM_FUTURE' },
    );
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
    return new AppError('unauthenticated', `subject token: ${joseReason(error)}`, {
      reason: 'SUBJECT_TOKEN_INVALID',
    });
  }
  return new AppError('unavailable', `identity provider ${idp.namespace}: JWKS unavailable`);
}
