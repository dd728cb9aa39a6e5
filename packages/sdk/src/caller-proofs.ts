import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { importJWK, type JWK, SignJWT } from 'jose';

/** How long a client assertion lives: well inside any replay window. */
const ASSERTION_LIFETIME_SECONDS = 60;

/**
 * Signs a single-use RFC 7523 client assertion of `clientId` for `aud` = the issuer identifier, with
 * the client's private JWK (EdDSA for an OKP key, ES256 for EC, unless the JWK names its `alg`).
 *
 * @example
 * metadata.set('client-assertion', await signClientAssertion('argocd', privateJwk, 'https://aoa.internal'));
 */
export async function signClientAssertion(clientId: string, jwk: JWK, issuer: string): Promise<string> {
  const alg = jwk.alg ?? (jwk.kty === 'OKP' ? 'EdDSA' : 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg, ...(jwk.kid ? { kid: jwk.kid } : {}) })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(await importJWK(jwk, alg));
}

/** A DPoP signing key: the private key and its public JWK, as the proof's header carries it. */
export interface DpopKey {
  privateKey: KeyObject;
  publicJwk: JWK;
  /** `ES256` for EC P-256, `EdDSA` for Ed25519. */
  alg: 'ES256' | 'EdDSA';
}

/**
 * An RFC 9449 DPoP proof for `htm htu` by `key`, bound by `ath` to `accessToken` (the token it is
 * sent with, or the token it attests, as at enrolment).
 *
 * @example
 * metadata.set('dpop', await signDpopProof(key, 'POST', `${grpcUrl}/aoa.v1.Auditor/Query`, token));
 */
export async function signDpopProof(
  key: DpopKey,
  htm: string,
  htu: string,
  accessToken: string,
  nowMs = Date.now(),
): Promise<string> {
  return new SignJWT({
    jti: randomBytes(16).toString('base64url'),
    htm,
    htu,
    iat: Math.floor(nowMs / 1000),
    ath: createHash('sha256').update(accessToken).digest('base64url'),
  })
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}
