import { errors, jwtVerify } from 'jose';
import type { AoaClaims } from './claims.js';
import { parseAoaClaims } from './claims-schema.js';
import type { Clock } from './clock.js';
import { joseReason } from './dpop.js';
import { AppError } from './errors.js';
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
  if (token.length > MAX_TOKEN_BYTES || token.split('.').length !== 3) {
    throw new AppError('unauthenticated', 'access token: malformed');
  }
  try {
    const { payload, protectedHeader } = await jwtVerify(
      token,
      (header) => {
        const published = header.kid ? check.keys.get(header.kid) : undefined;
        if (!published) throw new errors.JWKSNoMatchingKey();
        if (published.record.alg !== header.alg) throw new errors.JOSEAlgNotAllowed('alg mismatch');
        return published.key;
      },
      {
        issuer: check.issuer,
        algorithms: [...AOA_TOKEN_ALGORITHMS],
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'nbf', 'jti', 'sub', 'aud', 'client_id'],
        currentDate: new Date(check.clock.nowMs()),
        clockTolerance: check.clockToleranceSeconds ?? 5,
        ...(check.audience === undefined ? {} : { audience: check.audience }),
      },
    );
    const claims = parseAoaClaims(payload);
    return { claims, kid: protectedHeader.kid as string, alg: protectedHeader.alg };
  } catch (error) {
    if (error instanceof AppError) throw error;
    const reason = error instanceof errors.JOSEError ? joseReason(error) : 'invalid';
    throw new AppError('unauthenticated', `access token: ${reason}`, { detail: { reason } });
  }
}
