import type { AoaClaims } from './claims.js';
import { parseAoaClaims } from './claims-schema.js';
import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import { JwsError, verifyCompactJws } from './jws-verify.js';
import type { KeySetMirror } from './key-set.js';

/** Algorithms aoa signs access tokens with (contract section 3); anything else is refused. */
export const AOA_TOKEN_ALGORITHMS = ['EdDSA', 'ES256'] as const;
const MAX_TOKEN_BYTES = 16 * 1024;

export interface AoaTokenCheck {
  /** The issuer identifier: `iss` must equal it exactly. */
  issuer: string;
  /** The published keys (a mirror of KV `aoa_keys`). */
  keys: KeySetMirror;
  clock: Clock;
  /** When set, `aud` must contain one of these. */
  audience?: string | string[];
  /** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`; default 5. */
  clockToleranceSeconds?: number;
}

/** A verified aoa access token. */
export interface VerifiedAoaToken {
  claims: AoaClaims;
  kid: string;
  alg: string;
}

/**
 * Verifies an aoa access token per RFC 9068: `typ` `at+jwt`, an allowed algorithm matching the
 * published key's, a signature by a key in `aoa_keys`, `iss` exact, `aud` when asked, `exp` and `nbf`,
 * then the aoa claim shape. Any failure is `unauthenticated` with a reason that holds no token material.
 * Revocation is the caller's next step (`RevocationMirror.check`).
 *
 * @example
 * const { claims, kid } = await verifyAoaToken(token, { issuer, keys, clock: systemClock });
 */
export async function verifyAoaToken(token: string, check: AoaTokenCheck): Promise<VerifiedAoaToken> {
  const fail = (reason: string): never => {
    throw new AppError('unauthenticated', `access token: ${reason}`, { detail: { reason } });
  };
  if (token.length > MAX_TOKEN_BYTES) fail('malformed');
  let verified: ReturnType<typeof verifyCompactJws>;
  try {
    verified = verifyCompactJws(
      token,
      (header) => {
        const published = typeof header.kid === 'string' ? check.keys.get(header.kid) : undefined;
        if (!published) throw new AppError('unauthenticated', 'access token: unknown signing key (kid)');
        if (published.record.alg !== header.alg) throw new JwsError('algorithm not allowed');
        return published.key;
      },
      AOA_TOKEN_ALGORITHMS,
    );
  } catch (error) {
    if (error instanceof AppError) throw error;
    return fail(error instanceof JwsError ? error.reason : 'malformed');
  }
  const { header, payload } = verified;
  if (header.typ !== 'at+jwt' && header.typ !== 'application/at+jwt') fail('claim check failed (typ)');
  if (payload.iss !== check.issuer) fail('claim check failed (iss)');
  for (const claim of ['exp', 'iat', 'nbf', 'jti', 'sub', 'aud', 'client_id']) {
    if (!(claim in payload)) fail(`claim check failed (${claim})`);
  }
  const claims = parseAoaClaims(payload);
  const now = check.clock.nowMs() / 1000;
  const tolerance = check.clockToleranceSeconds ?? 5;
  if (claims.exp <= now - tolerance) fail('expired');
  if (claims.nbf > now + tolerance) fail('claim check failed (nbf)');
  if (check.audience !== undefined) {
    const wanted = Array.isArray(check.audience) ? check.audience : [check.audience];
    if (!claims.aud.some((a) => wanted.includes(a))) fail('claim check failed (aud)');
  }
  return { claims, kid: header.kid as string, alg: header.alg as string };
}
