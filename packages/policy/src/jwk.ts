import { createPublicKey, type KeyObject } from 'node:crypto';
import { MIN_RSA_BITS, PRIVATE_JWK_MEMBERS } from '@aoa/core';
import type { JWK } from 'jose';
import { quote } from './errors.js';
import type { ClientKey } from './types.js';

/** A problem with one JWK, `path` relative to the key itself. */
export interface JwkProblem {
  path: string[];
  problem: string;
}

const COMMON_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'x5c', 'x5t', 'x5t#S256', 'x5u', 'ext'];
const KEY_TYPES: Record<string, { members: string[]; crv?: string; algs: string[] }> = {
  OKP: { members: ['crv', 'x'], crv: 'Ed25519', algs: ['EdDSA', 'Ed25519'] },
  EC: { members: ['crv', 'x', 'y'], crv: 'P-256', algs: ['ES256'] },
  RSA: { members: ['n', 'e'], algs: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] },
};
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Checks a registered client key and imports it once. Only public signing keys are accepted: Ed25519,
 * P-256 or RSA of at least 2048 bits; a private member or a symmetric key is refused outright, so a
 * secret pasted into the policy by mistake never loads.
 *
 * @example
 * const result = importClientJwk({ kty: 'OKP', crv: 'Ed25519', x: '11qY...', kid: 'k1' });
 * if ('problems' in result) throw ...; else result.key.key.asymmetricKeyType; // 'ed25519'
 */
export function importClientJwk(
  input: Record<string, unknown>,
): { key: ClientKey } | { problems: JwkProblem[] } {
  const problems: JwkProblem[] = [];
  const add = (member: string | undefined, problem: string) =>
    problems.push({ path: member === undefined ? [] : [member], problem });

  for (const member of PRIVATE_JWK_MEMBERS) {
    if (member in input)
      add(member, `private key member "${member}" is not allowed: register the public key only`);
  }
  const kty = input.kty;
  if (kty === 'oct') add('kty', 'symmetric keys (kty oct) are not allowed: register a public key');
  const spec = typeof kty === 'string' ? KEY_TYPES[kty] : undefined;
  if (kty === undefined) add('kty', 'required');
  else if (!spec && kty !== 'oct')
    add('kty', `unsupported key type ${quote(kty)}: use OKP (Ed25519), EC (P-256) or RSA`);
  if (problems.length > 0 || !spec) return { problems };

  for (const member of Object.keys(input)) {
    if (!COMMON_MEMBERS.includes(member) && !spec.members.includes(member)) add(member, 'unknown key');
  }
  for (const member of spec.members) {
    const value = input[member];
    if (value === undefined) add(member, 'required');
    else if (typeof value !== 'string' || (member !== 'crv' && !BASE64URL.test(value))) {
      add(member, member === 'crv' ? 'must be a string' : 'must be a base64url string');
    }
  }
  if (spec.crv !== undefined && typeof input.crv === 'string' && input.crv !== spec.crv) {
    add('crv', `unsupported curve ${quote(input.crv)}: ${kty} keys must be ${spec.crv}`);
  }
  checkOptionalMembers(input, spec.algs, add);
  if (problems.length > 0) return { problems };

  const members: Record<string, string> = { kty: kty as string };
  for (const member of [...spec.members, 'kid', 'alg', 'use']) {
    const value = input[member];
    if (typeof value === 'string') members[member] = value;
  }
  const jwk = members as JWK;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: members, format: 'jwk' });
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '').slice(0, 120) : 'unreadable';
    return { problems: [{ path: [], problem: `invalid ${kty} public key: ${reason}` }] };
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) {
    return {
      problems: [
        { path: ['n'], problem: `RSA key has ${bits ?? 0} bits; at least ${MIN_RSA_BITS} are required` },
      ],
    };
  }
  const kid = typeof input.kid === 'string' ? input.kid : undefined;
  const alg = typeof input.alg === 'string' ? input.alg : undefined;
  return { key: { kid, alg, jwk, key } };
}

function checkOptionalMembers(
  input: Record<string, unknown>,
  algs: string[],
  add: (member: string, problem: string) => void,
): void {
  if (input.kid !== undefined && (typeof input.kid !== 'string' || input.kid.length === 0)) {
    add('kid', 'must be a non-empty string');
  }
  if (input.alg !== undefined && (typeof input.alg !== 'string' || !algs.includes(input.alg))) {
    add('alg', `${quote(input.alg)} does not fit kty ${String(input.kty)}: use ${algs.join(', ')}`);
  }
  if (input.use !== undefined && input.use !== 'sig') add('use', 'must be "sig": client keys only sign');
  const ops = input.key_ops;
  if (ops !== undefined && (!Array.isArray(ops) || ops.some((op) => op !== 'verify'))) {
    add('key_ops', 'must list only "verify"');
  }
}
