import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clientAssertion, makeKey } from './support/oauth.js';
import { EXCHANGE, JWT, JWT_BEARER, type OAuthHarness, oauthHarness, post } from './support/oauth-http.js';
import { startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let h: OAuthHarness;

before(async () => {
  sys = await startSystem();
  h = oauthHarness(sys);
});
after(async () => {
  await sys?.stop();
});

describe('token endpoint: malformed requests', () => {
  test('wrong content type is 415, an oversized body 413', async () => {
    const json = await fetch(h.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(json.status, 415);
    const big = await post(h.tokenUrl, { grant_type: EXCHANGE, pad: 'x'.repeat(70 * 1024) });
    assert.equal(big.status, 413);
  });

  test('missing, duplicated and mismatched parameters are invalid_request', async () => {
    // Every request carries a fresh assertion: a consumed one would be refused first (401).
    const fresh = async () => Object.entries({ ...(await h.exchangeParams()), ...(await h.auth()) });
    const without = async (name: string) => (await fresh()).filter(([k]) => k !== name);
    const plus = async (name: string, value: string) =>
      [...(await fresh()), [name, value]] as Array<[string, string]>;
    const cases: Array<[string, Array<[string, string]>, string]> = [
      ['no subject_token', await without('subject_token'), 'invalid_request'],
      ['no subject_token_type', await without('subject_token_type'), 'invalid_request'],
      ['no grant_type', await without('grant_type'), 'invalid_request'],
      ['duplicated scope', await plus('scope', 'write:dashboards'), 'invalid_request'],
      ['duplicated subject_token', await plus('subject_token', 'x'), 'invalid_request'],
      ['duplicated client_assertion', await plus('client_assertion', 'x'), 'invalid_request'],
      ['actor_token without type', await plus('actor_token', 'a.b.c'), 'invalid_request'],
      ['actor_token_type without token', await plus('actor_token_type', JWT), 'invalid_request'],
      ['unsupported subject_token_type', await plus('requested_token_type', 'urn:x'), 'invalid_request'],
      ['resource not absolute', await plus('resource', 'relative/path'), 'invalid_target'],
      ['aoa_ttl not a number', await plus('aoa_ttl', '5m'), 'invalid_request'],
    ];
    for (const [name, body, error] of cases) {
      const answer = await post(h.tokenUrl, body);
      assert.equal(answer.status, 400, name);
      assert.equal(answer.body.error, error, name);
    }
    const other = (await fresh()).map(([k, v]): [string, string] => [
      k,
      k === 'grant_type' ? 'client_credentials' : v,
    ]);
    assert.equal((await post(h.tokenUrl, other)).body.error, 'unsupported_grant_type');
  });
});

describe('token endpoint: client authentication (private_key_jwt)', () => {
  test('bad assertions are 401 invalid_client', async () => {
    const { issuer, tokenUrl, auth } = h;
    const params = await h.exchangeParams({ aoa_holder_jkt: (await makeKey()).jkt });
    const replayed = await auth();
    assert.equal((await post(tokenUrl, { ...params, ...replayed })).status, 200);
    const now = Math.floor(Date.now() / 1000);
    const signedBy = async (clientId: string, key: typeof sys.keys.argocd) => ({
      client_assertion_type: JWT_BEARER,
      client_assertion: await clientAssertion(clientId, key, issuer),
    });
    const cases: Array<[string, Record<string, string>]> = [
      ['replayed', replayed],
      ['wrong aud (token endpoint)', await auth('argocd', { claims: { aud: tokenUrl } })],
      ['aud array with extra member', await auth('argocd', { claims: { aud: [issuer, 'https://other'] } })],
      ['expired', await auth('argocd', { claims: { iat: now - 120, exp: now - 60 } })],
      ['unknown client', await signedBy('nobody', sys.keys.argocd)],
      ['signed by another key', await signedBy('argocd', sys.keys.admin)],
      ['client_id mismatch', { ...(await auth()), client_id: 'ci' }],
      ['wrong assertion type', { ...(await auth()), client_assertion_type: 'urn:example:other' }],
      ['client_id alone', { client_id: 'argocd' }],
      ['no authentication at all', {}],
    ];
    for (const [name, authParams] of cases) {
      const answer = await post(tokenUrl, { ...params, ...authParams });
      assert.equal(answer.status, 401, name);
      assert.equal(answer.body.error, 'invalid_client', name);
    }
  });
});

describe('token endpoint: rate limiting', () => {
  test('per source address, with 429 and Retry-After', async () => {
    const limited = await sys.startIssuer({ AOA_TOKEN_RATE_PER_SOURCE: '1' });
    try {
      const url = `${limited.issuer}/token`;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i++) {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: 'x',
        });
        statuses.push(response.status);
        if (response.status === 429) retryAfter = response.headers.get('retry-after');
        await response.arrayBuffer();
      }
      assert.deepEqual(statuses.slice(0, 2), [415, 415]);
      assert.ok(statuses.includes(429), String(statuses));
      assert.ok(Number(retryAfter) >= 1);
      const metrics = await (await fetch(`${limited.issuer}/metrics`)).text();
      assert.match(metrics, /aoa_issuer_token_rate_limited_total\{scope="source"\} [1-9]/);
    } finally {
      await limited.stop();
    }
  });
});
