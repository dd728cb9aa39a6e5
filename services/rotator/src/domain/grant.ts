import { AppError, assertName } from '@aoa/core';
import {
  MAX_GRANT_TOKEN_TTL_SECONDS,
  MIN_GRANT_TOKEN_TTL_SECONDS,
  parseGrantPrincipal,
  SCOPE_TOKEN,
} from '@aoa/policy';

const GRANT_ID = /^[A-Za-z0-9_-]{8,64}$/;
const MAX_ITEMS = 32;

export function assertGrantId(value: unknown): string {
  if (typeof value !== 'string' || !GRANT_ID.test(value)) {
    throw new AppError('invalid_argument', 'grant_id: must be 8 to 64 base64url characters');
  }
  return value;
}

/** Splits `idp:<namespace>:<sub>` into its parts. */
export function parsePrincipal(sub: string): { idp: string; sub: string } {
  const principal = parseGrantPrincipal(sub);
  if (!principal) throw new AppError('invalid_argument', 'sub: must be idp:<namespace>:<subject>');
  return principal;
}

/** A grant as a CreateGrant request names it, before validation. */
export interface GrantRequest {
  sub: string;
  child: string;
  environment: string;
  scopes: string[];
  audience: string[];
  tokenTtlSeconds: number;
  expiresAt: number;
}

export interface GrantInput {
  sub: string;
  app: string;
  env: string;
  scopes: string[];
  audience: string[];
  tokenTtlSeconds: number;
  expiresAt: number;
}

/**
 * Validates a CreateGrant request's shape (policy is asked separately): names, scope tokens, a token
 * TTL between 2 s and 24 h, and an expiry in the future within `maxLifetimeSeconds` (0: the maximum).
 */
export function validateGrantInput(
  raw: GrantRequest,
  nowSeconds: number,
  maxLifetimeSeconds: number,
): GrantInput {
  parsePrincipal(raw.sub);
  const app = assertName('child', raw.child);
  const env = assertName('environment', raw.environment);
  if (raw.scopes.length === 0) throw new AppError('invalid_argument', 'scopes: at least one');
  if (raw.scopes.length > MAX_ITEMS || raw.audience.length > MAX_ITEMS) {
    throw new AppError('invalid_argument', `scopes, audience: at most ${MAX_ITEMS} each`);
  }
  for (const scope of raw.scopes) {
    if (!SCOPE_TOKEN.test(scope)) throw new AppError('invalid_argument', 'scopes: not a scope token');
  }
  for (const aud of raw.audience) {
    if (aud.length === 0 || aud.length > 512) throw new AppError('invalid_argument', 'audience: bad value');
  }
  const ttl = raw.tokenTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < MIN_GRANT_TOKEN_TTL_SECONDS || ttl > MAX_GRANT_TOKEN_TTL_SECONDS) {
    throw new AppError(
      'invalid_argument',
      `token_ttl_seconds: must be between ${MIN_GRANT_TOKEN_TTL_SECONDS} and ${MAX_GRANT_TOKEN_TTL_SECONDS}`,
    );
  }
  const latest = nowSeconds + maxLifetimeSeconds;
  const expiresAt = raw.expiresAt === 0 ? latest : raw.expiresAt;
  if (expiresAt <= nowSeconds + ttl) {
    throw new AppError('invalid_argument', 'expires_at: must be later than now plus one token TTL');
  }
  if (expiresAt > latest) {
    throw new AppError('invalid_argument', `expires_at: a grant lives at most ${maxLifetimeSeconds}s`);
  }
  return {
    sub: raw.sub,
    app,
    env,
    scopes: [...new Set(raw.scopes)].sort(),
    audience: [...new Set(raw.audience)].sort(),
    tokenTtlSeconds: ttl,
    expiresAt,
  };
}
