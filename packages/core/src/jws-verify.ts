import { constants, type KeyObject, verify } from 'node:crypto';

/** Why a compact JWS was refused; stable codes, public text. */
export type JwsFailure = 'malformed' | 'algorithm not allowed' | 'unsupported header' | 'signature invalid';

export class JwsError extends Error {
  override readonly name = 'JwsError';
  constructor(readonly reason: JwsFailure) {
    super(reason);
  }
}

export interface VerifiedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** Which key types each algorithm may be verified with; an algorithm is never taken from the key alone. */
const KEY_TYPES: Record<string, readonly string[]> = {
  EdDSA: ['ed25519'],
  Ed25519: ['ed25519'],
  ES256: ['ec'],
  ES384: ['ec'],
  RS256: ['rsa'],
  PS256: ['rsa', 'rsa-pss'],
};

/** The curve an ECDSA algorithm fixes. */
const CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1' };

const decodeJson = (segment: string): Record<string, unknown> => {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) throw new JwsError('malformed');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new JwsError('malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwsError('malformed');
  return value as Record<string, unknown>;
};

/**
 * Verifies a compact JWS with `node:crypto` directly (several times jose's WebCrypto path on this
 * machine), for the hot paths: client assertions, aoa's own tokens and DPoP proofs. The header's
 * `alg` must be in `allowed` and fit the key's type (no `none`, no HMAC, no algorithm confusion);
 * `crit` and `b64` are refused since nothing here understands them. Claims are the caller's to check.
 *
 * @example
 * const { payload } = verifyCompactJws(token, publicKey, ['EdDSA']);
 */
export function verifyCompactJws(
  token: string,
  keyFor: KeyObject | ((header: Record<string, unknown>) => KeyObject),
  allowed: readonly string[],
): VerifiedJws {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 1 || second < 0 || token.indexOf('.', second + 1) !== -1) throw new JwsError('malformed');
  const header = decodeJson(token.slice(0, first));
  const alg = header.alg;
  if (typeof alg !== 'string' || !allowed.includes(alg)) throw new JwsError('algorithm not allowed');
  const key = typeof keyFor === 'function' ? keyFor(header) : keyFor;
  const keyTypes = KEY_TYPES[alg];
  if (!keyTypes?.includes(key.asymmetricKeyType ?? '')) throw new JwsError('algorithm not allowed');
  const curve = CURVES[alg];
  if (curve && key.asymmetricKeyDetails?.namedCurve !== curve) throw new JwsError('algorithm not allowed');
  if ('crit' in header || 'b64' in header) throw new JwsError('unsupported header');
  const signatureSegment = token.slice(second + 1);
  if (!/^[A-Za-z0-9_-]+$/.test(signatureSegment)) throw new JwsError('malformed');
  const data = Buffer.from(token.slice(0, second));
  const signature = Buffer.from(signatureSegment, 'base64url');
  let ok: boolean;
  try {
    ok = verifySignature(alg, data, signature, key);
  } catch {
    ok = false;
  }
  if (!ok) throw new JwsError('signature invalid');
  return { header, payload: decodeJson(token.slice(first + 1, second)) };
}

function verifySignature(alg: string, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  switch (alg) {
    case 'EdDSA':
    case 'Ed25519':
      return verify(null, data, key, signature);
    case 'ES256':
      return signature.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'ES384':
      return signature.length === 96 && verify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'RS256':
      return verify('sha256', data, key, signature);
    case 'PS256':
      return verify(
        'sha256',
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        signature,
      );
    default:
      return false;
  }
}
