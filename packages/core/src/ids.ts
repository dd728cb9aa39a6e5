import { createHash, randomBytes } from 'node:crypto';

/**
 * A base64url random identifier of 128 bits: jtis, grant ids, event ids, revocation ids. It never
 * starts with `-`, which every command line would read as an option (`aoa grants rotate -8f…`): a
 * leading `-` becomes `_`.
 */
export const randomId = (bytes = 16): string => {
  const id = randomBytes(bytes).toString('base64url');
  return id.startsWith('-') ? `_${id.slice(1)}` : id;
};

/** Hex SHA-256; a legal KV key. */
export const sha256Hex = (input: string | Uint8Array): string =>
  createHash('sha256').update(input).digest('hex');

/** base64url SHA-256, as in DPoP `ath` and JWK thumbprints. */
export const sha256B64u = (input: string | Uint8Array): string =>
  createHash('sha256').update(input).digest('base64url');

/** A short, non-reversible fingerprint of a secret, for logs: the first 12 hex digits of its SHA-256. */
export const fingerprint = (secret: string): string => sha256Hex(secret).slice(0, 12);
