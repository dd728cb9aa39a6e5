import { type KeyObject, randomBytes, sign } from 'node:crypto';

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Pre-signs `count` RFC 7523 client assertions (Ed25519) for `audience`, each with its own `jti`, so
 * a measured run spends no load-generator time signing and never reuses one.
 *
 * @example
 * const pool = signClientAssertions(1000, key.privateKey, issuer, { id: 'argocd', kid: 'argocd-1' });
 */
export function signClientAssertions(
  count: number,
  privateKey: KeyObject,
  audience: string,
  client = { id: 'argocd', kid: 'argocd-1' },
  lifeSeconds = 240,
): string[] {
  const header = b64u({ alg: 'EdDSA', kid: client.kid });
  const random = randomBytes(16 * count);
  const iat = Math.floor(Date.now() / 1000);
  return Array.from({ length: count }, (_, i) => {
    const jti = random.subarray(16 * i, 16 * i + 16).toString('base64url');
    const input = `${header}.${b64u({ iss: client.id, sub: client.id, aud: audience, jti, iat, exp: iat + lifeSeconds })}`;
    return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  });
}
