import { AppError, jwkThumbprint } from '@aoa/core';
import { type AgentKeyPurpose, checkAgentJwk, sameAgentKey } from '@aoa/policy';
import type { JWK } from 'jose';

const MAX_JWK_BYTES = 2048;

/**
 * Parses an agent's public JWK sent as JSON text and checks it for one purpose with the check policy
 * applies to registered agents (`checkAgentJwk`): public only, an allowed `kty`/`crv`, a valid point.
 * Returns the JWK with only its public members, so nothing else the caller sent is ever stored.
 *
 * @example
 * const enc = parsePublicJwk('encryption_jwk', request.encryptionJwk, 'encryption');
 */
export function parsePublicJwk(field: string, text: string, purpose: AgentKeyPurpose): JWK {
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
  const checked = checkAgentJwk(value, purpose);
  return 'jwk' in checked ? checked.jwk : fail(checked.problem);
}

/**
 * Validates both of an agent's keys and that they are two different keys (one key must never serve
 * both key agreement and signing). Returns them with the DPoP key's RFC 7638 thumbprint.
 */
export function parseAgentKeys(
  encryptionText: string,
  dpopText: string,
): { encryption: JWK; dpop: JWK; dpopJkt: string } {
  const encryption = parsePublicJwk('encryption_jwk', encryptionText, 'encryption');
  const dpop = parsePublicJwk('dpop_jwk', dpopText, 'dpop');
  if (sameAgentKey(encryption, dpop)) {
    throw new AppError('invalid_argument', 'encryption_jwk and dpop_jwk must be different keys');
  }
  return { encryption, dpop, dpopJkt: jwkThumbprint(dpop) };
}
