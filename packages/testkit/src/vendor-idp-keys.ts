import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** How a vendor names its signing key in `kid`. */
export type KidStyle =
  /** RFC 7638 thumbprint (Okta, GitLab, HCP Terraform publish 43-character base64url ids). */
  | 'jwk-thumbprint'
  /** base64url SHA-256 of the DER public key, as kube-apiserver computes it. */
  | 'spki-sha256'
  /** The same value as `x5t` (Entra ID). */
  | 'x5t'
  /** A UUID-shaped id (GitHub Actions). */
  | 'uuid';

/** The one RS256 key pair of a vendor IdP; every tenant and every token uses it. */
export interface VendorSigningKey {
  readonly privateKey: CryptoKey;
  /** The private JWK with `kid`, `alg` and `use`, as oidc-provider's `jwks` configuration wants it. */
  readonly privateJwk: JWK;
  /** The public members only (`kty`, `n`, `e`). */
  readonly publicJwk: JWK;
  readonly kid: string;
  /**
   * base64url SHA-1 thumbprint. Vendors take it of their X.509 certificate; this key has no certificate,
   * so it is taken of the DER public key: same format, and still unique to the key.
   */
  readonly x5t: string;
}

export const SIGNING_ALG = 'RS256';

/**
 * Generates an RS256 key pair and names it the way the vendor would.
 *
 * @example
 * const key = await generateSigningKey('spki-sha256');
 * key.kid; // 43 base64url characters, as in a kubernetes service-account token header
 */
export async function generateSigningKey(style: KidStyle): Promise<VendorSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const full = await exportJWK(publicKey);
  const publicJwk: JWK = { kty: full.kty, n: full.n, e: full.e };
  const der = createPublicKey({ key: { ...publicJwk }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
  const x5t = createHash('sha1').update(der).digest('base64url');
  const kid = await kidFor(style, publicJwk, der, x5t);
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
  return { privateKey, privateJwk, publicJwk, kid, x5t };
}

async function kidFor(style: KidStyle, publicJwk: JWK, der: Buffer, x5t: string): Promise<string> {
  switch (style) {
    case 'jwk-thumbprint':
      return calculateJwkThumbprint(publicJwk, 'sha256');
    case 'spki-sha256':
      return createHash('sha256').update(der).digest('base64url');
    case 'x5t':
      return x5t;
    case 'uuid':
      return randomUUID();
  }
}
