import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import type { Clock } from './clock.js';
import { type DpopCheck, verifyDpopProof } from './dpop.js';
import { AppError } from './errors.js';

// RFC 9449 section 4.1's example proof (ES256), and the thumbprint section 6.1 gives its key.
const RFC9449_PROOF =
  'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg';
const RFC9449_JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I';

const HTU = 'https://resource.internal/api';
const TOKEN = 'an.access.token';
const clockAt = (ms: number): Clock => ({ nowMs: () => ms }) as Clock;

/** A replay guard that records what it was asked to claim, and refuses a second claim of one jti. */
function recordingReplay() {
  const claimed: string[] = [];
  return {
    claimed,
    claim: async (kind: string, scope: string, jti: string) => {
      const key = `${kind}:${scope}:${jti}`;
      if (claimed.includes(key)) throw new AppError('unauthenticated', 'jti was already used (replay)');
      claimed.push(key);
    },
  };
}

interface Holder {
  alg: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}
const pairFor = (alg: string) =>
  alg.startsWith('Ed')
    ? generateKeyPairSync('ed25519')
    : alg.startsWith('ES')
      ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
const holder = async (alg: string): Promise<Holder> => {
  const pair = pairFor(alg);
  return { alg, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)) } };
};
const HOLDERS = await Promise.all(['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'].map(holder));
const byAlg = (alg: string) => HOLDERS.find((k) => k.alg === alg) as Holder;
const ED = byAlg('EdDSA');

const proof = (
  key: Holder,
  overrides: { claims?: Record<string, unknown>; header?: Record<string, unknown>; signer?: KeyObject } = {},
) =>
  new SignJWT({
    jti: randomBytes(12).toString('base64url'),
    htm: 'GET',
    htu: HTU,
    iat: Math.floor(Date.now() / 1000),
    ath: createHash('sha256').update(TOKEN).digest('base64url'),
    ...overrides.claims,
  })
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...overrides.header })
    .sign(overrides.signer ?? key.privateKey);

const check = (value: string, more: Partial<DpopCheck> = {}): DpopCheck => ({
  proof: value,
  htm: 'GET',
  htu: HTU,
  accessToken: TOKEN,
  windowSeconds: 300,
  clock: clockAt(Date.now()),
  replay: recordingReplay(),
  ...more,
});

const refused = (promise: Promise<unknown>, reason: RegExp) =>
  assert.rejects(
    promise,
    (e: unknown) => e instanceof AppError && e.code === 'unauthenticated' && reason.test(e.message),
  );

describe('verifyDpopProof', () => {
  it("accepts the RFC's example proof at its own time and returns its key's thumbprint", async () => {
    const replay = recordingReplay();
    const jkt = await verifyDpopProof({
      proof: RFC9449_PROOF,
      htm: 'POST',
      htu: 'https://server.example.com/token',
      windowSeconds: 300,
      clock: clockAt(1562262616 * 1000),
      replay,
    });
    assert.equal(jkt, RFC9449_JKT);
    assert.deepEqual(replay.claimed, [`dpop:${RFC9449_JKT}:-BwC3ESc6acc2lTc`]);
  });

  it("accepts every algorithm DPoP allows, returning jose's thumbprint, and claims the jti under it", async () => {
    for (const key of HOLDERS) {
      const replay = recordingReplay();
      const value = await proof(key);
      const jkt = await verifyDpopProof(check(value, { replay }));
      assert.equal(jkt, await calculateJwkThumbprint(key.jwk, 'sha256'), key.alg);
      await refused(verifyDpopProof(check(value, { replay })), /replay/);
    }
  });

  it('refuses a proof signed by another key than the one it carries, for every algorithm', async () => {
    for (const key of HOLDERS) {
      await refused(
        verifyDpopProof(check(await proof(key, { signer: pairFor(key.alg).privateKey }))),
        /signature invalid/,
      );
    }
  });

  it('refuses a key that does not fit the algorithm it claims', async () => {
    const [p256, p384] = [byAlg('ES256'), byAlg('ES384')];
    const es256WithP384 = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: p384.jwk })}.${b64({ htm: 'GET' })}.${'A'.repeat(86)}`;
    await refused(verifyDpopProof(check(es256WithP384)), /algorithm not allowed/);
    const edWithP256 = `${b64({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: p256.jwk })}.${b64({ htm: 'GET' })}.${'A'.repeat(86)}`;
    await refused(verifyDpopProof(check(edWithP256)), /algorithm not allowed/);
  });

  it('refuses each malformed or unacceptable header with its reason', async () => {
    const ed = await exportJWK(generateKeyPairSync('ed25519').privateKey);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ typ: 'JWT' }, /typ must be dpop\+jwt/],
      [{ jwk: undefined }, /jwk header missing/],
      [{ jwk: ed }, /private key/],
      [{ jwk: { ...ED.jwk, use: 'enc' } }, /use must be sig/],
    ];
    for (const [header, reason] of cases)
      await refused(verifyDpopProof(check(await proof(ED, { header }))), reason);
    const crit = `${b64({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: ED.jwk, crit: ['x'], x: 1 })}.${b64({ htm: 'GET' })}.AAAA`;
    await refused(verifyDpopProof(check(crit)), /unsupported header/);
    const hs = `${b64({ alg: 'HS256', typ: 'dpop+jwt', jwk: ED.jwk })}.${b64({ htm: 'GET' })}.AAAA`;
    await refused(verifyDpopProof(check(hs)), /algorithm not allowed/);
    const none = `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: ED.jwk })}.${b64({ htm: 'GET' })}.`;
    await refused(verifyDpopProof(check(none)), /algorithm not allowed|malformed/);
    await refused(verifyDpopProof(check('not-a-jws')), /malformed/);
    await refused(verifyDpopProof(check(`${'a'.repeat(5000)}.b.c`)), /malformed/);
  });

  it('refuses each claim that does not fit the request', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ htm: 'POST' }, /htm must be GET/],
      [{ htu: 'https://elsewhere.internal/api' }, /htu does not match/],
      [{ iat: now - 301 }, /stale/],
      [{ iat: now + 60 }, /in the future/],
      [{ iat: 'now' }, /iat missing/],
      [{ jti: 'short' }, /jti missing/],
      [{ ath: 'wrong' }, /ath does not match/],
      [{ exp: now - 1 }, /expired/],
      [{ nbf: now + 60 }, /not yet valid/],
    ];
    for (const [claims, reason] of cases)
      await refused(verifyDpopProof(check(await proof(ED, { claims }))), reason);
  });

  it('compares htu without the query and fragment, as RFC 9449 says', async () => {
    const value = await proof(ED, { claims: { htu: `${HTU}?page=2#top` } });
    assert.equal(typeof (await verifyDpopProof(check(value))), 'string');
  });
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
