import { createHash } from 'node:crypto';
import type { ReplayGuard } from './bus/replay.js';
import type { Clock } from './clock.js';
import { EmbeddedJwkError, embeddedKey } from './embedded-jwk.js';
import { AppError } from './errors.js';
import { JwsError, verifyCompactJws } from './jws-verify.js';

/**
 * The `htu` of the DPoP proof an agent sends with a pod attestation (`Rotator.Enroll`): a name, not a
 * URL, since a rotator behind a load balancer does not know the URL it is reached by.
 */
export const ENROLL_DPOP_HTU = 'urn:aoa:rotator:enroll';

// 'Ed25519' is the fully-specified name (RFC 9864) that current clients such as oauth4webapi send.
export const DPOP_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'];
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
 * or URL, a stale or future `iat`, a missing or wrong `ath`, and a replayed `jti`. The signature is
 * checked with `node:crypto` ({@link verifyCompactJws}), against the header's key as imported once per
 * thumbprint ({@link embeddedKey}): a proof costs about one signature verification.
 *
 * @example
 * const jkt = await verifyDpopProof({ proof, htm: 'POST', htu, accessToken, windowSeconds: 300, clock, replay });
 */
export async function verifyDpopProof(check: DpopCheck): Promise<string> {
  const fail = (reason: string): never => {
    throw new AppError('unauthenticated', `DPoP proof: ${reason}`);
  };
  if (check.proof.length > MAX_PROOF_BYTES) fail('malformed');
  let jkt = '';
  let payload: Record<string, unknown>;
  try {
    ({ payload } = verifyCompactJws(
      check.proof,
      (header) => {
        if (header.typ !== 'dpop+jwt') fail('typ must be dpop+jwt');
        const embedded = embeddedKey(header.jwk, header.alg);
        jkt = embedded.jkt;
        return embedded.key;
      },
      DPOP_ALGORITHMS,
    ));
  } catch (error) {
    if (error instanceof JwsError || error instanceof EmbeddedJwkError) return fail(error.message);
    throw error;
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
  if (payload.exp !== undefined && !(typeof payload.exp === 'number' && payload.exp > now)) fail('expired');
  if (payload.nbf !== undefined && !(typeof payload.nbf === 'number' && payload.nbf <= now + 5)) {
    fail('not yet valid (nbf)');
  }
  if (check.accessToken !== undefined) {
    const ath = createHash('sha256').update(check.accessToken).digest('base64url');
    if (payload.ath !== ath) fail('ath does not match the presented token');
  }
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
