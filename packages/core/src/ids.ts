import { createHash, randomBytes, randomFillSync } from 'node:crypto';

/**
 * Random bytes come from the CSPRNG 4 KiB at a time: one `randomBytes(16)` costs about 5.5 µs on this
 * machine (a call into the C++ RNG each time), a slice of a pooled buffer 0.2 µs, and a jti and an
 * event id are drawn per credential. Each slice is handed out once.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/** `bytes` fresh random bytes as base64url, each slice of the pool handed out once. */
function pooledRandomBase64url(bytes: number): string {
  if (bytes > POOL_BYTES) return randomBytes(bytes).toString('base64url');
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.toString('base64url', poolOffset - bytes, poolOffset);
}

/**
 * A base64url random identifier of 128 bits: jtis, grant ids, event ids, revocation ids. It never
 * starts with `-`, which every command line would read as an option (`aoa grants rotate -8f…`): a
 * leading `-` becomes `_`.
 */
export const randomId = (bytes = 16): string => {
  const id = pooledRandomBase64url(bytes);
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
