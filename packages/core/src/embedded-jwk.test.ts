import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { EmbeddedJwkError, embeddedKey, jwkThumbprint } from './embedded-jwk.js';

// RFC 7638 section 3.1's example key and thumbprint.
const RFC7638_JWK = {
  kty: 'RSA',
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};
// RFC 9449 section 4.1's example proof key and the thumbprint section 6.1 gives it.
const RFC9449_JWK = {
  kty: 'EC',
  x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs',
  y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA',
  crv: 'P-256',
};

const refused = (fn: () => unknown, reason: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof EmbeddedJwkError && reason.test(e.message));

describe('jwkThumbprint', () => {
  it("gives the RFCs' example thumbprints", () => {
    assert.equal(jwkThumbprint(RFC7638_JWK), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    assert.equal(jwkThumbprint(RFC9449_JWK), '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
  });

  it("equals jose's for every key type DPoP allows, whatever other members the JWK carries", async () => {
    const pairs = [
      generateKeyPairSync('ed25519'),
      generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      generateKeyPairSync('ec', { namedCurve: 'P-384' }),
      generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ];
    const jwks = await Promise.all(pairs.map((pair) => exportJWK(pair.publicKey)));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...jwks),
        fc.dictionary(fc.constantFrom('kid', 'use', 'alg', 'x5t', 'extra'), fc.string()),
        async (jwk, extra) => {
          const withExtra = { ...extra, ...jwk };
          assert.equal(jwkThumbprint(withExtra), await calculateJwkThumbprint(jwk, 'sha256'));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses a symmetric key, an unknown key type and a missing member', () => {
    refused(() => jwkThumbprint({ kty: 'oct', k: 'c2VjcmV0' }), /kty must be EC, OKP or RSA/);
    refused(() => jwkThumbprint({ x: 'abc' }), /kty/);
    refused(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: RFC9449_JWK.x }), /jwk y missing/);
    refused(() => jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: 7 }), /jwk x missing/);
  });
});

describe('embeddedKey', () => {
  it('imports the public key with its thumbprint, and the same key once however often it is seen', async () => {
    const pair = generateKeyPairSync('ed25519');
    const jwk = await exportJWK(pair.publicKey);
    const first = embeddedKey(jwk, 'EdDSA');
    assert.equal(first.jkt, await calculateJwkThumbprint(jwk, 'sha256'));
    assert.ok(first.key.equals(pair.publicKey));
    assert.equal(embeddedKey({ ...jwk, kid: 'other' }, 'EdDSA').key, first.key);
  });

  it('refuses what jose refuses in a jwk header: absent, private, another use or alg, invalid, short RSA', async () => {
    const ed = generateKeyPairSync('ed25519');
    const jwk = await exportJWK(ed.publicKey);
    refused(() => embeddedKey(undefined, 'EdDSA'), /jwk header missing/);
    refused(() => embeddedKey([jwk], 'EdDSA'), /jwk header missing/);
    const privateJwk = await exportJWK(ed.privateKey);
    refused(() => embeddedKey(privateJwk, 'EdDSA'), /private key/);
    refused(() => embeddedKey({ ...jwk, use: 'enc' }, 'EdDSA'), /use must be sig/);
    refused(() => embeddedKey({ ...jwk, alg: 'ES256' }, 'EdDSA'), /alg differs/);
    refused(() => embeddedKey({ ...jwk, x: 'AAAA' }, 'EdDSA'), /not a valid public key/);
    refused(() => embeddedKey({ ...RFC9449_JWK, y: RFC9449_JWK.x }, 'ES256'), /not a valid public key/);
    const short = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
    refused(() => embeddedKey(short, 'RS256'), /1024 bits; at least 2048/);
  });
});
