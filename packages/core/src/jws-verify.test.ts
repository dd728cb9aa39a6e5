import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { JwsError, verifyCompactJws } from './jws-verify.js';

const ed = generateKeyPairSync('ed25519');
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ALL = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'];

const sign = (alg: string, key: Parameters<SignJWT['sign']>[0], header: Record<string, unknown> = {}) =>
  new SignJWT({ sub: 'x', n: 1 }).setProtectedHeader({ alg, ...header }).sign(key);

const refused = (fn: () => unknown, reason: string) =>
  assert.throws(fn, (e: unknown) => e instanceof JwsError && e.reason === reason);

describe('verifyCompactJws', () => {
  it('accepts what jose signs with EdDSA, Ed25519, ES256, ES384, RS256 and PS256', async () => {
    for (const [alg, pair] of [
      ['EdDSA', ed],
      ['Ed25519', ed],
      ['ES256', ec],
      ['ES384', ec384],
      ['RS256', rsa],
      ['PS256', rsa],
    ] as const) {
      const { payload, header } = verifyCompactJws(await sign(alg, pair.privateKey), pair.publicKey, ALL);
      assert.equal(payload.sub, 'x');
      assert.equal(header.alg, alg);
    }
  });

  it('refuses alg none, HMAC, algorithms outside the list and algorithm confusion between key types', async () => {
    refused(
      () => verifyCompactJws(new UnsecuredJWT({ sub: 'x' }).encode(), ed.publicKey, ALL),
      'algorithm not allowed',
    );
    const hs = await sign('HS256', Buffer.from(ed.publicKey.export({ type: 'spki', format: 'pem' })));
    refused(() => verifyCompactJws(hs, ed.publicKey, ALL), 'algorithm not allowed');
    const es256 = await sign('ES256', ec.privateKey);
    refused(() => verifyCompactJws(es256, ec.publicKey, ['EdDSA']), 'algorithm not allowed');
    refused(
      () =>
        verifyCompactJws(
          hs.replace(/^[^.]+/, Buffer.from('{"alg":"ES256"}').toString('base64url')),
          ed.publicKey,
          ALL,
        ),
      'algorithm not allowed',
    );
    const es384 = await new SignJWT({}).setProtectedHeader({ alg: 'ES384' }).sign(ec384.privateKey);
    refused(
      () =>
        verifyCompactJws(
          es384.replace(/^[^.]+/, Buffer.from('{"alg":"ES256"}').toString('base64url')),
          ec384.publicKey,
          ALL,
        ),
      'algorithm not allowed',
    );
    const es256WithP256 = es256.replace(/^[^.]+/, Buffer.from('{"alg":"ES384"}').toString('base64url'));
    refused(() => verifyCompactJws(es256WithP256, ec.publicKey, ALL), 'algorithm not allowed');
  });

  it('refuses a bad signature, a foreign key, crit and b64 headers, and malformed input', async () => {
    const token = await sign('EdDSA', ed.privateKey);
    const other = generateKeyPairSync('ed25519');
    refused(() => verifyCompactJws(token, other.publicKey, ALL), 'signature invalid');
    const [h, p] = token.split('.');
    const tampered = `${h}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.${token.split('.')[2]}`;
    refused(() => verifyCompactJws(tampered, ed.publicKey, ALL), 'signature invalid');
    refused(() => verifyCompactJws(`${h}.${p}.`, ed.publicKey, ALL), 'malformed');
    refused(() => verifyCompactJws(`${h}.${p}`, ed.publicKey, ALL), 'malformed');
    refused(() => verifyCompactJws(`${token}.x`, ed.publicKey, ALL), 'malformed');
    refused(() => verifyCompactJws('e30.e30.e30', ed.publicKey, ALL), 'algorithm not allowed');
    refused(() => verifyCompactJws('!!.e30.AA', ed.publicKey, ALL), 'malformed');
    const withHeader = (header: object) =>
      token.replace(/^[^.]+/, Buffer.from(JSON.stringify(header)).toString('base64url'));
    refused(
      () => verifyCompactJws(withHeader({ alg: 'EdDSA', crit: ['exp'], exp: 1 }), ed.publicKey, ALL),
      'unsupported header',
    );
    refused(
      () => verifyCompactJws(withHeader({ alg: 'EdDSA', b64: false }), ed.publicKey, ALL),
      'unsupported header',
    );
  });
});
