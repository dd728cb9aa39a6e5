import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import { parseAgentKeys, parsePublicJwk } from './public-jwk.js';

const jwkOf = (type: 'ec' | 'x25519' | 'ed25519' | 'rsa', priv = false): Record<string, unknown> => {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : type === 'x25519'
          ? generateKeyPairSync('x25519')
          : generateKeyPairSync('ed25519');
  return (priv ? pair.privateKey : pair.publicKey).export({ format: 'jwk' }) as Record<string, unknown>;
};
const text = (value: unknown) => JSON.stringify(value);
const refused = (fn: () => unknown, message: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof AppError && e.code === 'invalid_argument' && message.test(e.message),
  );

describe('parsePublicJwk', () => {
  it('accepts EC P-256 and X25519 for encryption, EC P-256 and Ed25519 for DPoP', () => {
    assert.equal(parsePublicJwk('k', text(jwkOf('ec')), 'encryption').crv, 'P-256');
    assert.equal(parsePublicJwk('k', text(jwkOf('x25519')), 'encryption').crv, 'X25519');
    assert.equal(parsePublicJwk('k', text(jwkOf('ec')), 'dpop').crv, 'P-256');
    assert.equal(parsePublicJwk('k', text(jwkOf('ed25519')), 'dpop').crv, 'Ed25519');
  });

  it('keeps only the public members', () => {
    const parsed = parsePublicJwk('k', text({ ...jwkOf('ec'), kid: 'x', extra: 'y' }), 'dpop');
    assert.deepEqual(Object.keys(parsed).sort(), ['crv', 'kty', 'x', 'y']);
  });

  it('refuses a private key part', () => {
    refused(
      () => parsePublicJwk('encryption_jwk', text(jwkOf('ec', true)), 'encryption'),
      /encryption_jwk: contains a private key part/,
    );
    refused(() => parsePublicJwk('dpop_jwk', text(jwkOf('ed25519', true)), 'dpop'), /private key part/);
  });

  it('refuses a key type or curve not meant for the purpose', () => {
    refused(
      () => parsePublicJwk('k', text(jwkOf('ed25519')), 'encryption'),
      /must be EC P-256 or OKP X25519/,
    );
    refused(() => parsePublicJwk('k', text(jwkOf('x25519')), 'dpop'), /must be EC P-256 or OKP Ed25519/);
    refused(() => parsePublicJwk('k', text(jwkOf('rsa')), 'dpop'), /must be/);
  });

  it('refuses text that is not a JWK, and a point not on the curve', () => {
    refused(() => parsePublicJwk('k', 'not json', 'dpop'), /not JSON/);
    refused(() => parsePublicJwk('k', '[1]', 'dpop'), /not a JWK object/);
    refused(() => parsePublicJwk('k', '', 'dpop'), /required/);
    const bad = { ...jwkOf('ec'), y: Buffer.alloc(32, 1).toString('base64url') };
    refused(() => parsePublicJwk('k', text(bad), 'dpop'), /not a valid public key/);
  });

  it('refuses a use that contradicts the purpose', () => {
    refused(() => parsePublicJwk('k', text({ ...jwkOf('ec'), use: 'sig' }), 'encryption'), /wrong use/);
  });
});

describe('parseAgentKeys', () => {
  it('returns both keys and the DPoP key thumbprint', () => {
    const keys = parseAgentKeys(text(jwkOf('ec')), text(jwkOf('ec')));
    assert.match(keys.dpopJkt, /^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses one key used for both purposes', () => {
    const same = text(jwkOf('ec'));
    assert.throws(() => parseAgentKeys(same, same), /must be different keys/);
  });
});
