import { createPublicKey, type KeyObject } from 'node:crypto';

/** Pinned checkpoint public keys: Ed25519, each as base64url of its raw 32 bytes (`x` of its JWK). */
export type TrustedKeys = ReadonlySet<string>;

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

/**
 * Reads the trusted checkpoint keys from the text of `AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS`: a public JWK,
 * a JWK Set (`{"keys": [...]}`) or one or more PEM `PUBLIC KEY` blocks. Every key must be an Ed25519
 * public key; private material is refused (the file is meant to be shareable).
 *
 * @throws TypeError naming the key (`key 2: ...`) and the problem, never the key material
 * @example
 * const trusted = parseTrustedKeys(await readFile(path, 'utf8'));
 * verifyCheckpoint(cp, trusted);
 */
export function parseTrustedKeys(text: string): TrustedKeys {
  const trimmed = text.trim();
  if (trimmed === '') throw new TypeError('the file is empty');
  const keys = trimmed.startsWith('{') ? jwksOf(trimmed) : pemsOf(trimmed);
  if (keys.length === 0)
    throw new TypeError('no keys found (expected a JWK, a JWK Set or PEM PUBLIC KEY blocks)');
  return new Set(keys.map((key, i) => rawEd25519(key, i + 1)));
}

function jwksOf(json: string): KeyObject[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new TypeError('not valid JSON');
  }
  const record = parsed as Record<string, unknown>;
  const list = Array.isArray(record.keys) ? (record.keys as unknown[]) : [parsed];
  return list.map((jwk, i) => {
    if (typeof jwk !== 'object' || jwk === null) throw new TypeError(`key ${i + 1}: not a JWK object`);
    if ('d' in jwk) throw new TypeError(`key ${i + 1}: holds private material; give the public key only`);
    try {
      return createPublicKey({ key: jwk as Record<string, string>, format: 'jwk' });
    } catch {
      throw new TypeError(`key ${i + 1}: not a usable public JWK`);
    }
  });
}

function pemsOf(text: string): KeyObject[] {
  if (/PRIVATE KEY-----/.test(text)) throw new TypeError('holds a private key; give the public key only');
  return (text.match(PEM_BLOCK) ?? []).map((pem, i) => {
    try {
      return createPublicKey(pem);
    } catch {
      throw new TypeError(`key ${i + 1}: not a readable PEM public key`);
    }
  });
}

function rawEd25519(key: KeyObject, n: number): string {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(
      `key ${n}: is ${key.asymmetricKeyType ?? 'unknown'}, checkpoints are signed with Ed25519`,
    );
  }
  return String(key.export({ format: 'jwk' }).x);
}
