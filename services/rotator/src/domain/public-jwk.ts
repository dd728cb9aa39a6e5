import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { AppError } from '@aoa/core';
import { calculateJwkThumbprint, type JWK } from 'jose';

/** What a public key is for: ECDH-ES+A256KW key agreement, or DPoP proof signing. */
export type KeyPurpose = 'encryption' | 'dpop';

const ALLOWED: Record<KeyPurpose, Array<{ kty: string; crv: string }>> = {
  encryption: [
    { kty: 'EC', crv: 'P-256' },
    { kty: 'OKP', crv: 'X25519' },
  ],
  dpop: [
    { kty: 'EC', crv: 'P-256' },
    { kty: 'OKP', crv: 'Ed25519' },
  ],
};
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const MAX_JWK_BYTES = 2048;

/**
 * Parses and checks an agent's public JWK for one purpose: JSON object, public only (no private
 * member), an allowed `kty`/`crv`, a point the platform accepts. Returns the JWK with only its public
 * members, so nothing else the caller sent is ever stored.
 *
 * @example
 * const enc = parsePublicJwk('encryption_jwk', request.encryptionJwk, 'encryption');
 */
export function parsePublicJwk(field: string, text: string, purpose: KeyPurpose): JWK {
  const fail = (problem: string): never => {
    throw new AppError('invalid_argument', `${field}: ${problem}`);
  };
  if (typeof text !== 'string' || text.length === 0) fail('required');
  if (text.length > MAX_JWK_BYTES) fail('too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not a JWK object');
  const jwk = value as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) fail('contains a private key part');
  const allowed = ALLOWED[purpose];
  if (!allowed.some((a) => a.kty === jwk.kty && a.crv === jwk.crv)) {
    fail(`must be ${allowed.map((a) => `${a.kty} ${a.crv}`).join(' or ')}`);
  }
  if (jwk.use !== undefined && jwk.use !== (purpose === 'encryption' ? 'enc' : 'sig')) fail('wrong use');
  const publicJwk: JWK =
    jwk.kty === 'EC'
      ? { kty: 'EC', crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string }
      : { kty: 'OKP', crv: jwk.crv as string, x: jwk.x as string };
  try {
    createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' });
  } catch {
    fail('not a valid public key');
  }
  return publicJwk;
}

/**
 * Validates both of an agent's keys and that they are two different keys (one key must never serve
 * both key agreement and signing). Returns them with the DPoP key's RFC 7638 thumbprint.
 */
export async function parseAgentKeys(
  encryptionText: string,
  dpopText: string,
): Promise<{ encryption: JWK; dpop: JWK; dpopJkt: string }> {
  const encryption = parsePublicJwk('encryption_jwk', encryptionText, 'encryption');
  const dpop = parsePublicJwk('dpop_jwk', dpopText, 'dpop');
  if (encryption.kty === dpop.kty && encryption.x === dpop.x && encryption.y === dpop.y) {
    throw new AppError('invalid_argument', 'encryption_jwk and dpop_jwk must be different keys');
  }
  return { encryption, dpop, dpopJkt: await calculateJwkThumbprint(dpop, 'sha256') };
}
