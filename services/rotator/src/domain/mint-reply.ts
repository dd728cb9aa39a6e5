import { AppError, type ErrorCode, isName } from '@aoa/core';

/** One agent's encrypted credential as the issuer returns it. */
export interface MintedDelivery {
  agent: string;
  jti: string;
  exp: number;
  jwe: string;
}

const CODES = new Set<ErrorCode>([
  'invalid_argument',
  'unauthenticated',
  'permission_denied',
  'not_found',
  'already_exists',
  'failed_precondition',
  'resource_exhausted',
  'unavailable',
  'internal',
]);
/** Compact JWE: five base64url segments (the second, the encrypted key, is never empty here). */
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Reads the issuer's `aoa.issuer.mint` reply: `{deliveries:[{agent, jti, exp, jwe}]}` or
 * `{error:{code, message}}`. Anything else is `internal`; an error reply becomes that `AppError`.
 */
export function parseMintReply(data: Uint8Array): MintedDelivery[] {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new AppError('internal', 'mint reply: not JSON');
  }
  if (typeof body !== 'object' || body === null) throw new AppError('internal', 'mint reply: not an object');
  const { deliveries, error } = body as {
    deliveries?: unknown;
    error?: { code?: unknown; message?: unknown };
  };
  if (error) {
    const code = CODES.has(error.code as ErrorCode) ? (error.code as ErrorCode) : 'internal';
    throw new AppError(code, typeof error.message === 'string' ? error.message : 'mint refused');
  }
  if (!Array.isArray(deliveries)) throw new AppError('internal', 'mint reply: deliveries missing');
  return deliveries.map((d: Record<string, unknown>) => {
    if (
      !isName(d.agent) ||
      typeof d.jti !== 'string' ||
      typeof d.exp !== 'number' ||
      typeof d.jwe !== 'string' ||
      !COMPACT_JWE.test(d.jwe)
    ) {
      throw new AppError('internal', 'mint reply: malformed delivery');
    }
    return { agent: d.agent, jti: d.jti, exp: d.exp, jwe: d.jwe };
  });
}
