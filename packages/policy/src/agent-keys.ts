import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { PRIVATE_JWK_MEMBERS } from '@aoa/core';
import type { JWK } from 'jose';

/** What an agent's public key is for: ECDH-ES+A256KW key agreement, or DPoP proof signing. */
export type AgentKeyPurpose = 'encryption' | 'dpop';

const ALLOWED: Record<AgentKeyPurpose, Array<{ kty: string; crv: string }>> = {
  encryption: [
    { kty: 'EC', crv: 'P-256' },
    { kty: 'OKP', crv: 'X25519' },
  ],
  dpop: [
    { kty: 'EC', crv: 'P-256' },
    { kty: 'OKP', crv: 'Ed25519' },
  ],
};

/**
 * Checks an agent's public JWK for one purpose: an object, public only (no private member), an allowed
 * `kty`/`crv`, a `use` that fits, a point the platform accepts. Returns the JWK with only its public
 * members, so nothing else is ever stored. `Rotator.Enroll` and policy-registered agents (`grants[].agents`)
 * share this check.
 *
 * @example
 * const result = checkAgentJwk(JSON.parse(text), 'encryption');
 * if ('problem' in result) throw new AppError('invalid_argument', `encryption_jwk: ${result.problem}`);
 */
export function checkAgentJwk(value: unknown, purpose: AgentKeyPurpose): { jwk: JWK } | { problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { problem: 'not a JWK object' };
  const jwk = value as Record<string, unknown>;
  if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) return { problem: 'contains a private key part' };
  const allowed = ALLOWED[purpose];
  if (!allowed.some((a) => a.kty === jwk.kty && a.crv === jwk.crv)) {
    return { problem: `must be ${allowed.map((a) => `${a.kty} ${a.crv}`).join(' or ')}` };
  }
  if (jwk.use !== undefined && jwk.use !== (purpose === 'encryption' ? 'enc' : 'sig')) {
    return { problem: 'wrong use' };
  }
  const publicJwk: JWK =
    jwk.kty === 'EC'
      ? { kty: 'EC', crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string }
      : { kty: 'OKP', crv: jwk.crv as string, x: jwk.x as string };
  try {
    createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' });
  } catch {
    return { problem: 'not a valid public key' };
  }
  return { jwk: publicJwk };
}

/**
 * Whether two checked public JWKs are the same key: one key must never serve both key agreement and
 * signing.
 *
 * @example
 * if (sameAgentKey(encryption, dpop)) throw new AppError('invalid_argument', 'must be different keys');
 */
export const sameAgentKey = (a: JWK, b: JWK): boolean => a.kty === b.kty && a.x === b.x && a.y === b.y;
