import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Clock, type ReplayGuard, verifyDpopProof } from '@aoa/core';
import { calculateJwkThumbprint, decodeJwt, type JWK } from 'jose';
import { dpopProof, makeKey } from './support/oauth.js';
import { type OAuthHarness, oauthHarness, post } from './support/oauth-http.js';
import { startSystem, type TestSystem } from './support/system.js';

/** RFC 9449 section 4.1: the example key and the proof it signed on 2019-07-04. */
const RFC9449_JWK: JWK = {
  kty: 'EC',
  x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs',
  y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA',
  crv: 'P-256',
};
const RFC9449_PROOF =
  'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg';

let sys: TestSystem;
let h: OAuthHarness;

before(async () => {
  sys = await startSystem();
  h = oauthHarness(sys);
});
after(async () => {
  await sys?.stop();
});

describe('token endpoint: DPoP (RFC 9449)', () => {
  test("the RFC's example key has the RFC's thumbprint, and its 2019 proof is refused as stale", async () => {
    assert.equal(await calculateJwkThumbprint(RFC9449_JWK), '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
    const replay = { claim: async () => undefined } as unknown as ReplayGuard;
    const clock: Clock = { nowMs: () => Date.now() } as Clock;
    await assert.rejects(
      verifyDpopProof({
        proof: RFC9449_PROOF,
        htm: 'POST',
        htu: 'https://server.example.com/token',
        windowSeconds: 300,
        clock,
        replay,
      }),
      /stale/,
    );
    const answer = await post(
      h.tokenUrl,
      { ...(await h.exchangeParams()), ...(await h.auth()) },
      { dpop: RFC9449_PROOF },
    );
    assert.equal(answer.status, 400);
    assert.ok(['use_dpop_nonce', 'invalid_dpop_proof'].includes(String(answer.body.error)));
  });

  test('a proof without a current nonce is answered use_dpop_nonce with a DPoP-Nonce header', async () => {
    const key = await makeKey();
    const none = await post(
      h.tokenUrl,
      { ...(await h.exchangeParams()), ...(await h.auth()) },
      { dpop: await dpopProof(key, 'POST', h.tokenUrl) },
    );
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'use_dpop_nonce');
    assert.ok(none.headers.get('dpop-nonce'));
    const wrong = await post(
      h.tokenUrl,
      { ...(await h.exchangeParams()), ...(await h.auth()) },
      { dpop: await dpopProof(key, 'POST', h.tokenUrl, undefined, { claims: { nonce: 'made-up' } }) },
    );
    assert.equal(wrong.body.error, 'use_dpop_nonce');
  });

  test('proofs with the wrong htu or htm, a stale iat, or a reused jti are invalid_dpop_proof', async () => {
    const { tokenUrl } = h;
    const key = await makeKey();
    const nonce = await h.serverNonce();
    const now = Math.floor(Date.now() / 1000);
    const proof = (htm: string, htu: string, claims: Record<string, unknown> = {}, header = {}) =>
      dpopProof(key, htm, htu, undefined, { claims: { nonce, ...claims }, header });
    const send = async (dpop: string) =>
      post(tokenUrl, { ...(await h.exchangeParams()), ...(await h.auth()) }, { dpop });
    const reused = await proof('POST', tokenUrl);
    assert.equal((await send(reused)).status, 200);
    const cases: Array<[string, string]> = [
      ['reused jti', reused],
      ['wrong htu', await proof('POST', h.introspectUrl)],
      ['wrong htm', await proof('GET', tokenUrl)],
      ['stale iat', await proof('POST', tokenUrl, { iat: now - 3600 })],
      ['future iat', await proof('POST', tokenUrl, { iat: now + 3600 })],
      ['wrong typ', await proof('POST', tokenUrl, {}, { typ: 'JWT' })],
    ];
    for (const [name, dpop] of cases) {
      const answer = await send(dpop);
      assert.equal(answer.status, 400, name);
      assert.equal(answer.body.error, 'invalid_dpop_proof', name);
    }
  });

  test('a client registered with dpop_bound_access_tokens is refused without a proof and bound with one', async () => {
    const holder = { aoa_holder_jkt: (await makeKey()).jkt };
    const without = await post(h.tokenUrl, {
      ...(await h.exchangeParams(holder)),
      ...(await h.auth('edge')),
    });
    assert.equal(without.status, 400);
    assert.equal(without.body.error, 'invalid_dpop_proof');
    assert.match(String(without.body.error_description), /edge must send a DPoP proof/);
    assert.equal(without.body.access_token, undefined);

    const key = await makeKey('ES256');
    const nonce = await h.serverNonce();
    const withProof = await post(
      h.tokenUrl,
      { ...(await h.exchangeParams()), ...(await h.auth('edge')) },
      { dpop: await dpopProof(key, 'POST', h.tokenUrl, undefined, { claims: { nonce } }) },
    );
    assert.equal(withProof.status, 200, JSON.stringify(withProof.body));
    assert.equal(withProof.body.token_type, 'DPoP');
    const claims = decodeJwt(withProof.body.access_token as string);
    assert.deepEqual(claims.cnf, { jkt: key.jkt });
    assert.equal(claims.client_id, 'client:edge');

    const others = await post(h.tokenUrl, { ...(await h.exchangeParams(holder)), ...(await h.auth()) });
    assert.equal(others.status, 200, 'clients without the flag still may omit DPoP');
  });
});
