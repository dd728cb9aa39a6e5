import { AppError, assertName } from '@aoa/core';

/** A Delegate request as it arrives (the proto message's fields). */
export interface RawDelegateRequest {
  subjectToken: string;
  subjectTokenType: string;
  child: string;
  environment: string;
  scopes: string[];
  audience: string[];
  ttlSeconds: number;
  holderJkt: string;
}

/** A Delegate request after edge validation: the same for gRPC and the HTTP token endpoint. */
export interface DelegateInput {
  subjectToken: string;
  subjectTokenType: string;
  child: string;
  environment: string;
  scopes: string[];
  audience: string[];
  ttlSeconds: number;
  holderJkt: string | undefined;
}

export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
const JKT = /^[A-Za-z0-9_-]{43}$/;
const MAX_SCOPES = 32;
const MAX_AUDIENCES = 16;
const MAX_TTL_SECONDS = 7 * 86400;

/**
 * Validates the raw request fields with a precise message per field; nothing here needs the policy.
 *
 * @example
 * const input = validateDelegateRequest(call.request);
 */
export function validateDelegateRequest(raw: RawDelegateRequest): DelegateInput {
  if (!raw.subjectToken) throw new AppError('invalid_argument', 'subject_token: required');
  const child = assertName('child', raw.child);
  const environment = assertName('environment', raw.environment);
  if (raw.scopes.length === 0)
    throw new AppError('invalid_argument', 'scopes: at least one scope is required');
  if (raw.scopes.length > MAX_SCOPES) throw new AppError('invalid_argument', `scopes: at most ${MAX_SCOPES}`);
  raw.scopes.forEach((scope, i) => {
    if (!SCOPE_TOKEN.test(scope))
      throw new AppError('invalid_argument', `scopes[${i}]: not a valid scope token`);
  });
  if (raw.audience.length > MAX_AUDIENCES)
    throw new AppError('invalid_argument', `audience: at most ${MAX_AUDIENCES}`);
  raw.audience.forEach((aud, i) => {
    // No control character either: the audience is echoed into audit events, and PostgreSQL cannot
    // hold a NUL character.
    if (aud.length === 0 || aud.length > 512 || /[\s\p{Cc}]/u.test(aud)) {
      throw new AppError(
        'invalid_argument',
        `audience[${i}]: must be 1 to 512 characters without spaces or control characters`,
      );
    }
  });
  if (!Number.isInteger(raw.ttlSeconds) || raw.ttlSeconds < 0 || raw.ttlSeconds > MAX_TTL_SECONDS) {
    throw new AppError(
      'invalid_argument',
      `ttl_seconds: must be 0 (the longest allowed) to ${MAX_TTL_SECONDS}`,
    );
  }
  if (raw.holderJkt && !JKT.test(raw.holderJkt)) {
    throw new AppError(
      'invalid_argument',
      'holder_jkt: must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)',
    );
  }
  return {
    subjectToken: raw.subjectToken,
    subjectTokenType: raw.subjectTokenType,
    child,
    environment,
    scopes: [...new Set(raw.scopes)],
    audience: [...new Set(raw.audience)],
    ttlSeconds: raw.ttlSeconds,
    holderJkt: raw.holderJkt || undefined,
  };
}
