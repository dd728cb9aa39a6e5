import { createHash } from 'node:crypto';
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  errors,
  type JWK,
  jwtVerify,
} from 'jose';
import type { ReplayGuard } from './bus/replay.js';
import type { Clock } from './clock.js';
import { AppError } from './errors.js';

/**
 * The `htu` of the DPoP proof an agent sends with a pod attestation (`Rotator.Enroll`): a name, not a
 * URL, since a rotator behind a load balancer does not know the URL it is reached by.
 */
export const ENROLL_DPOP_HTU = 'urn:aoa:rotator:enroll';

// 'Ed25519' is the fully-specified name (RFC 9864) that current clients such as oauth4webapi send.
export const DPOP_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'];
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
const MAX_PROOF_BYTES = 4096;

export interface DpopCheck {
  proof: string;
  /** HTTP method the proof must name. */
  htm: string;
  /** Target URI the proof must name (compared without query and fragment). */
  htu: string;
  /** When an access token accompanies the proof, its `ath` must match. */
  accessToken?: string;
  /** Seconds a proof stays acceptable after its `iat` (the replay window W). */
  windowSeconds: number;
  clock: Clock;
  /** Claims the proof's `jti` once: KV-backed across replicas, or a verifier-local cache. */
  replay: Pick<ReplayGuard, 'claim'>;
}

/**
 * Validates an RFC 9449 DPoP proof and returns the RFC 7638 thumbprint of its key. Refuses a wrong
 * `typ`, a symmetric or `none` algorithm, a private key in the header, a bad signature, another method
 * or URL, a stale or future `iat`, a missing or wrong `ath`, and a replayed `jti`.
 *
 * @example
 * const jkt = await verifyDpopProof({ proof, htm: 'POST', htu, accessToken, windowSeconds: 300, clock, replay });
 */
export async function verifyDpopProof(check: DpopCheck): Promise<string> {
  const fail = (reason: string): never => {
    throw new AppError('unauthenticated', `DPoP proof: ${reason}`);
  };
  if (check.proof.length > MAX_PROOF_BYTES || check.proof.split('.').length !== 3) fail('malformed');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(check.proof);
  } catch {
    return fail('malformed header');
  }
  if (header.typ !== 'dpop+jwt') fail('typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !DPOP_ALGORITHMS.includes(header.alg)) fail('algorithm not allowed');
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object') fail('jwk header missing');
  if (PRIVATE_MEMBERS.some((m) => m in (jwk as object))) fail('jwk header contains a private key');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(check.proof, EmbeddedJWK, {
      algorithms: DPOP_ALGORITHMS,
      typ: 'dpop+jwt',
      currentDate: new Date(check.clock.nowMs()),
    }));
  } catch (error) {
    return fail(error instanceof errors.JOSEError ? joseReason(error) : 'invalid');
  }
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 256)
    fail('jti missing');
  if (payload.htm !== check.htm) fail(`htm must be ${check.htm}`);
  if (typeof payload.htu !== 'string' || normalizeHtu(payload.htu) !== normalizeHtu(check.htu)) {
    fail('htu does not match this endpoint');
  }
  const now = check.clock.nowMs() / 1000;
  if (typeof payload.iat !== 'number') fail('iat missing');
  const iat = payload.iat as number;
  if (iat < now - check.windowSeconds) fail('stale (iat outside the acceptance window)');
  if (iat > now + 5) fail('iat is in the future');
  if (check.accessToken !== undefined) {
    const ath = createHash('sha256').update(check.accessToken).digest('base64url');
    if (payload.ath !== ath) fail('ath does not match the presented token');
  }
  const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
  await check.replay.claim('dpop', jkt, payload.jti as string);
  return jkt;
}

function normalizeHtu(value: string): string {
  try {
    const url = new URL(value);
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return '';
  }
}

/** jose's messages name claims and checks, never token content. */
export function joseReason(error: errors.JOSEError): string {
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature invalid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown signing key (kid)';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `claim check failed (${(error as errors.JWTClaimValidationFailed).claim})`;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    default:
      return 'invalid';
  }
}
