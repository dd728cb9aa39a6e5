import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/** RFC 7638's required members per key type, in the lexicographic order its thumbprint hashes them. */
const REQUIRED_MEMBERS: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};
/** JWK members only a private or symmetric key has: a public key presented or registered has none. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** The smallest RSA modulus aoa accepts, anywhere a key is presented or registered. */
export const MIN_RSA_BITS = 2048;
/** Distinct keys kept imported; beyond it the oldest is imported again when next seen. */
const MAX_CACHED_KEYS = 1024;

/** Why a key carried in a JWS header (DPoP proof, actor token) was refused; public text. */
export class EmbeddedJwkError extends Error {
  override readonly name = 'EmbeddedJwkError';
}

export interface EmbeddedKey {
  /** RFC 7638 SHA-256 thumbprint, base64url: the `jkt` a token is bound to. */
  jkt: string;
  key: KeyObject;
}

const imported = new Map<string, KeyObject>();

/**
 * The RFC 7638 SHA-256 thumbprint of a public JWK (EC, OKP or RSA), computed with `node:crypto`
 * synchronously (jose's goes through WebCrypto, 15x slower here).
 *
 * @example
 * jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' });
 * @throws EmbeddedJwkError for another key type or a required member missing
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string {
  return thumbprintOf(requiredMembers(jwk));
}

/**
 * The public key a JWS carries in its `jwk` header, checked as jose's `EmbeddedJWK` does (public,
 * asymmetric, RSA of at least 2048 bits, `use` and `alg` consistent with the header's `alg`), with
 * its thumbprint. Imports are kept per thumbprint, bounded: a holder proving the same key on every
 * request pays for the import once. Which algorithm the key may verify is the verifier's check
 * ({@link verifyCompactJws}).
 *
 * @example
 * const { jkt, key } = embeddedKey(header.jwk, header.alg);
 * @throws EmbeddedJwkError naming what is wrong with the key
 */
export function embeddedKey(jwk: unknown, alg: unknown): EmbeddedKey {
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw new EmbeddedJwkError('jwk header missing');
  const members = jwk as Record<string, unknown>;
  if (PRIVATE_JWK_MEMBERS.some((member) => member in members)) {
    throw new EmbeddedJwkError('jwk header contains a private key');
  }
  if (members.use !== undefined && members.use !== 'sig') throw new EmbeddedJwkError('jwk use must be sig');
  if (members.alg !== undefined && members.alg !== alg) {
    throw new EmbeddedJwkError('jwk alg differs from the header alg');
  }
  const required = requiredMembers(members);
  const jkt = thumbprintOf(required);
  let key = imported.get(jkt);
  if (!key) {
    key = importPublic(required);
    if (imported.size >= MAX_CACHED_KEYS) imported.delete(imported.keys().next().value as string);
    imported.set(jkt, key);
  }
  return { jkt, key };
}

function requiredMembers(jwk: Readonly<Record<string, unknown>>): Record<string, string> {
  const names = typeof jwk.kty === 'string' ? REQUIRED_MEMBERS[jwk.kty] : undefined;
  if (!names) throw new EmbeddedJwkError('jwk kty must be EC, OKP or RSA');
  const required: Record<string, string> = {};
  for (const name of names) {
    const value = jwk[name];
    if (typeof value !== 'string' || value === '') throw new EmbeddedJwkError(`jwk ${name} missing`);
    required[name] = value;
  }
  return required;
}

// Inserted in lexicographic order, so JSON.stringify gives RFC 7638's canonical form.
const thumbprintOf = (required: Record<string, string>): string =>
  createHash('sha256').update(JSON.stringify(required)).digest('base64url');

function importPublic(required: Record<string, string>): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: required, format: 'jwk' });
  } catch {
    throw new EmbeddedJwkError('jwk is not a valid public key');
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && (bits ?? 0) < MIN_RSA_BITS) {
    throw new EmbeddedJwkError(`jwk RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  return key;
}
