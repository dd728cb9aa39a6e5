import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK, SignJWT } from 'jose';

/** A key pair as a client or an agent holds it. */
export interface TestKey {
  privateKey: KeyObject;
  publicJwk: JWK;
  jkt: string;
  alg: 'EdDSA' | 'ES256';
}

export async function makeKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<TestKey> {
  const { privateKey, publicKey } =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256'), alg };
}

/** An RFC 7523 client assertion; `overrides` replace claims or header fields to build bad ones. */
export async function clientAssertion(
  clientId: string,
  key: TestKey,
  audience: string,
  overrides: {
    claims?: Record<string, unknown>;
    header?: Record<string, unknown>;
    lifeSeconds?: number;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: clientId,
    sub: clientId,
    aud: audience,
    jti: randomBytes(16).toString('base64url'),
    iat: now,
    exp: now + (overrides.lifeSeconds ?? 60),
    ...overrides.claims,
  })
    .setProtectedHeader({ alg: key.alg, ...overrides.header })
    .sign(key.privateKey);
}

/** An RFC 9449 DPoP proof by `key` for `htm htu`, bound to `accessToken` by `ath`. */
export async function dpopProof(
  key: TestKey,
  htm: string,
  htu: string,
  accessToken?: string,
  overrides: { claims?: Record<string, unknown>; header?: Record<string, unknown> } = {},
): Promise<string> {
  return new SignJWT({
    jti: randomBytes(16).toString('base64url'),
    htm,
    htu,
    iat: Math.floor(Date.now() / 1000),
    ...(accessToken ? { ath: createHash('sha256').update(accessToken).digest('base64url') } : {}),
    ...overrides.claims,
  })
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...overrides.header })
    .sign(key.privateKey);
}
