import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type Clock, type ReplayGuard, verifyDpopProof } from '@aoa/core';
import { calculateJwkThumbprint, decodeJwt, exportJWK, importJWK, type JWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { startSystem, type TestSystem } from './support/system.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

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
let issuer: string;
let tokenUrl: string;
let introspectUrl: string;

before(async () => {
  sys = await startSystem();
  issuer = sys.issuer.issuer;
  tokenUrl = `${issuer}/token`;
  introspectUrl = `${issuer}/introspect`;
});
after(async () => {
  await sys?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function post(
  url: string,
  params: Array<[string, string]> | Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** Client authentication for `argocd` (or another client) with a fresh assertion. */
async function auth(
  client: 'argocd' | 'ci' | 'ops' = 'argocd',
  overrides: Parameters<typeof clientAssertion>[3] = {},
): Promise<Record<string, string>> {
  const key = client === 'argocd' ? sys.keys.argocd : client === 'ci' ? sys.keys.ci : sys.keys.admin;
  return {
    client_assertion_type: JWT_BEARER,
    client_assertion: await clientAssertion(client, key, issuer, overrides),
  };
}

async function exchangeParams(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    grant_type: EXCHANGE,
    subject_token: await sys.idpToken('argocd-sa'),
    subject_token_type: ACCESS_TOKEN,
    aoa_child: 'dashboards',
    aoa_environment: 'prod',
    scope: 'read:metrics',
    audience: 'https://dashboards.internal',
    ...extra,
  };
}

/** A current server nonce, obtained the way a client does: from a use_dpop_nonce challenge. */
async function serverNonce(): Promise<string> {
  const key = await makeKey();
  const answer = await post(
    tokenUrl,
    { ...(await exchangeParams()), ...(await auth()) },
    { dpop: await dpopProof(key, 'POST', tokenUrl) },
  );
  assert.equal(answer.body.error, 'use_dpop_nonce');
  const nonce = answer.headers.get('dpop-nonce');
  assert.ok(nonce);
  return nonce;
}

/** An actor token: the child names itself and proves its key. */
function actorToken(key: TestKey, child: string, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: `app:${child}`,
    aud: issuer,
    iat: now,
    exp: now + 60,
    jti: randomBytes(16).toString('base64url'),
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, typ: 'aoa-actor+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}

async function openidClient(): Promise<oidc.Configuration> {
  const key = await importJWK(await exportJWK(sys.keys.argocd.privateKey), 'EdDSA');
  return oidc.discovery(
    new URL(issuer),
    'argocd',
    { token_endpoint_auth_method: 'private_key_jwt' },
    oidc.PrivateKeyJwt({ key: key as oauth.CryptoKey, kid: 'argocd-1' }),
    {
      algorithm: 'oauth2',
      execute: [oidc.allowInsecureRequests],
    },
  );
}

describe('metadata (RFC 8414)', () => {
  test('advertises the token and introspection endpoints, private_key_jwt, token exchange and DPoP', async () => {
    const metadata = (await (
      await fetch(`${issuer}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    assert.equal(metadata.issuer, issuer);
    assert.equal(metadata.token_endpoint, tokenUrl);
    assert.equal(metadata.introspection_endpoint, introspectUrl);
    assert.deepEqual(metadata.grant_types_supported, [EXCHANGE]);
    assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.deepEqual(metadata.introspection_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.ok((metadata.token_endpoint_auth_signing_alg_values_supported as string[]).includes('EdDSA'));
    assert.ok((metadata.dpop_signing_alg_values_supported as string[]).includes('ES256'));
  });
});

describe('interop with openid-client and oauth4webapi', () => {
  test('openid-client exchanges an IdP token with private_key_jwt and DPoP, then introspects it', async () => {
    const config = await openidClient();
    const dpopKeys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, dpopKeys);
    const tokens = await oidc.genericGrantRequest(config, EXCHANGE, await exchangeParams(), { DPoP });
    assert.equal(tokens.token_type, 'dpop');
    assert.equal(tokens.issued_token_type, ACCESS_TOKEN);
    assert.equal(tokens.scope, 'read:metrics');
    assert.ok((tokens.expires_in ?? 0) > 0);
    const claims = decodeJwt(tokens.access_token);
    const jkt = await calculateJwkThumbprint(await exportJWK(dpopKeys.publicKey));
    assert.deepEqual(claims.cnf, { jkt });
    assert.equal(claims.client_id, 'client:argocd');
    assert.equal(claims.iss, issuer);

    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(introspection.active, true);
    assert.equal(introspection.jti, claims.jti);
    assert.equal(introspection.token_type, 'DPoP');
  });

  test('oauth4webapi requests a token for a named child key and validates it as a resource server', async () => {
    const as = await oauth.processDiscoveryResponse(
      new URL(issuer),
      await oauth.discoveryRequest(new URL(issuer), {
        algorithm: 'oauth2',
        [oauth.allowInsecureRequests]: true,
      }),
    );
    const clientKey = await importJWK(await exportJWK(sys.keys.ci.privateKey), 'ES256');
    const child = await makeKey();
    const params = await exchangeParams({
      subject_token: await sys.idpToken('ci-runner'),
      aoa_child: 'jobs',
      aoa_environment: 'staging',
      scope: 'run:job',
      audience: 'https://jobs.internal',
      aoa_holder_jkt: child.jkt,
    });
    const response = await oauth.genericTokenEndpointRequest(
      as,
      { client_id: 'ci' },
      oauth.PrivateKeyJwt({ key: clientKey as oauth.CryptoKey, kid: 'ci-1' }),
      EXCHANGE,
      params,
      {
        [oauth.allowInsecureRequests]: true,
      },
    );
    const tokens = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'ci' }, response);
    assert.equal(tokens.token_type, 'dpop');
    assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt: child.jkt });

    const resource = 'https://jobs.internal/run';
    const request = new Request(resource, {
      headers: {
        authorization: `DPoP ${tokens.access_token}`,
        dpop: await dpopProof(child, 'GET', resource, tokens.access_token),
      },
    });
    const claims = await oauth.validateJwtAccessToken(as, request, 'https://jobs.internal', {
      [oauth.allowInsecureRequests]: true,
      signingAlgorithms: ['EdDSA', 'ES256'],
    });
    assert.equal(claims.client_id, 'client:ci');
  });
});

describe('token exchange: the child and its key', () => {
  test('an actor_token names the child and binds the token to its key; the child sub-delegates with DPoP', async () => {
    const childKey = await makeKey('ES256');
    const first = await post(tokenUrl, {
      ...(await exchangeParams({ aoa_child: '' })),
      ...(await auth()),
      actor_token: await actorToken(childKey, 'dashboards'),
      actor_token_type: JWT,
      resource: 'https://metrics.internal',
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.headers.get('cache-control'), 'no-store');
    assert.equal(first.headers.get('pragma'), 'no-cache');
    assert.equal(first.body.token_type, 'DPoP');
    const parentToken = first.body.access_token as string;
    assert.deepEqual(decodeJwt(parentToken).cnf, { jkt: childKey.jkt });

    const grandchild = await makeKey();
    const nonce = await serverNonce();
    const subDelegate = async (extra: Record<string, string>) =>
      post(
        tokenUrl,
        {
          grant_type: EXCHANGE,
          subject_token: parentToken,
          subject_token_type: ACCESS_TOKEN,
          aoa_child: 'jobs',
          aoa_environment: 'prod',
          scope: 'read:metrics',
          resource: 'https://metrics.internal',
          ...extra,
        },
        { dpop: await dpopProof(childKey, 'POST', tokenUrl, parentToken, { claims: { nonce } }) },
      );
    const unbound = await subDelegate({});
    assert.equal(unbound.status, 400, 'the caller proof key never binds a sub-delegated token');
    assert.equal(unbound.body.error, 'invalid_request');
    const second = await subDelegate({ aoa_holder_jkt: grandchild.jkt });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const claims = decodeJwt(second.body.access_token as string);
    assert.deepEqual(claims.cnf, { jkt: grandchild.jkt });
    assert.equal(claims.client_id, 'app:dashboards');

    const otherKey = await makeKey('ES256');
    const mismatched = await post(
      tokenUrl,
      {
        grant_type: EXCHANGE,
        subject_token: parentToken,
        subject_token_type: ACCESS_TOKEN,
        aoa_child: 'jobs',
        aoa_environment: 'prod',
        scope: 'read:metrics',
        aoa_holder_jkt: grandchild.jkt,
      },
      { dpop: await dpopProof(otherKey, 'POST', tokenUrl, parentToken, { claims: { nonce } }) },
    );
    assert.equal(mismatched.status, 400);
    assert.equal(mismatched.body.error, 'invalid_dpop_proof');
  });

  test('a parent DPoP proof binds the token to the parent key when nothing else names one', async () => {
    const key = await makeKey();
    const nonce = await serverNonce();
    const answer = await post(
      tokenUrl,
      { ...(await exchangeParams()), ...(await auth()) },
      { dpop: await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce } }) },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(decodeJwt(answer.body.access_token as string).cnf, { jkt: key.jkt });
    assert.ok(answer.headers.get('dpop-nonce'));
  });

  test('refuses actor tokens that are replayed, for another audience, or disagree with aoa_child', async () => {
    const key = await makeKey();
    const token = await actorToken(key, 'dashboards');
    const base = async () => ({
      ...(await exchangeParams({ aoa_child: '' })),
      ...(await auth()),
      actor_token_type: JWT,
    });
    assert.equal((await post(tokenUrl, { ...(await base()), actor_token: token })).status, 200);
    const replayed = await post(tokenUrl, { ...(await base()), actor_token: token });
    assert.equal(replayed.body.error, 'invalid_request');
    assert.match(String(replayed.body.error_description), /replay/);
    const wrongAud = await post(tokenUrl, {
      ...(await base()),
      actor_token: await actorToken(key, 'dashboards', { aud: 'https://elsewhere' }),
    });
    assert.equal(wrongAud.body.error, 'invalid_request');
    const disagree = await post(tokenUrl, {
      ...(await base()),
      aoa_child: 'jobs',
      actor_token: await actorToken(key, 'dashboards'),
    });
    assert.equal(disagree.body.error, 'invalid_request');
  });
});

describe('token endpoint: malformed requests', () => {
  test('wrong content type is 415, an oversized body 413', async () => {
    const json = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(json.status, 415);
    const big = await post(tokenUrl, { grant_type: EXCHANGE, pad: 'x'.repeat(70 * 1024) });
    assert.equal(big.status, 413);
  });

  test('missing, duplicated and mismatched parameters are invalid_request', async () => {
    // Every request carries a fresh assertion: a consumed one would be refused first (401).
    const fresh = async () => Object.entries({ ...(await exchangeParams()), ...(await auth()) });
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
      const answer = await post(tokenUrl, body);
      assert.equal(answer.status, 400, name);
      assert.equal(answer.body.error, error, name);
    }
    const other = (await fresh()).map(([k, v]): [string, string] => [
      k,
      k === 'grant_type' ? 'client_credentials' : v,
    ]);
    assert.equal((await post(tokenUrl, other)).body.error, 'unsupported_grant_type');
  });

  test('policy refusals map to invalid_target, invalid_scope and unauthorized_client', async () => {
    const target = await post(tokenUrl, {
      ...(await exchangeParams({ audience: 'https://jobs.internal' })),
      ...(await auth()),
    });
    assert.equal(target.body.error, 'invalid_target');
    const scope = await post(tokenUrl, { ...(await exchangeParams({ scope: 'admin' })), ...(await auth()) });
    assert.equal(scope.body.error, 'invalid_scope');
    const notYours = await post(tokenUrl, { ...(await exchangeParams()), ...(await auth('ci')) });
    assert.equal(notYours.body.error, 'unauthorized_client');
    const badToken = await post(tokenUrl, {
      ...(await exchangeParams({ subject_token: 'not-a-jwt' })),
      ...(await auth()),
    });
    assert.equal(badToken.body.error, 'invalid_request');
  });

  test('may_act in a subject token must name the requesting client', async () => {
    sys.idp.addClient({
      clientId: 'sre-bot',
      clientSecret: 'sre-secret',
      groups: ['sre', 'platform'],
      mayAct: 'client:argocd',
    });
    const subject = await sys.idpToken('sre-bot');
    assert.deepEqual(decodeJwt(subject).may_act, { sub: 'client:argocd' });
    const refused = await post(tokenUrl, {
      ...(await exchangeParams({ subject_token: subject })),
      ...(await auth('ops')),
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');
    assert.match(String(refused.body.error_description), /may_act/);
    sys.idp.addClient({
      clientId: 'sre-bot',
      clientSecret: 'sre-secret',
      groups: ['sre', 'platform'],
      mayAct: 'client:ops',
    });
    const allowed = await post(tokenUrl, {
      ...(await exchangeParams({
        subject_token: await sys.idpToken('sre-bot'),
        aoa_holder_jkt: (await makeKey()).jkt,
      })),
      ...(await auth('ops')),
    });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  });
});

describe('token endpoint: client authentication (private_key_jwt)', () => {
  test('bad assertions are 401 invalid_client', async () => {
    const params = await exchangeParams({ aoa_holder_jkt: (await makeKey()).jkt });
    const replayed = await auth();
    assert.equal((await post(tokenUrl, { ...params, ...replayed })).status, 200);
    const cases: Array<[string, Record<string, string>]> = [
      ['replayed', replayed],
      ['wrong aud (token endpoint)', await auth('argocd', { claims: { aud: tokenUrl } })],
      ['aud array with extra member', await auth('argocd', { claims: { aud: [issuer, 'https://other'] } })],
      [
        'expired',
        await auth('argocd', {
          claims: { iat: Math.floor(Date.now() / 1000) - 120, exp: Math.floor(Date.now() / 1000) - 60 },
        }),
      ],
      [
        'unknown client',
        {
          client_assertion_type: JWT_BEARER,
          client_assertion: await clientAssertion('nobody', sys.keys.argocd, issuer),
        },
      ],
      [
        'signed by another key',
        {
          client_assertion_type: JWT_BEARER,
          client_assertion: await clientAssertion('argocd', sys.keys.admin, issuer),
        },
      ],
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

describe('token endpoint: DPoP (RFC 9449)', () => {
  test("the RFC's example key has the RFC's thumbprint, and its 2019 proof is refused as stale", async () => {
    assert.equal(await calculateJwkThumbprint(RFC9449_JWK), '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
    const claimed: string[] = [];
    const replay = {
      claim: async (_k: 'ca' | 'dpop', _i: string, jti: string) => void claimed.push(jti),
    } as unknown as ReplayGuard;
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
      tokenUrl,
      { ...(await exchangeParams()), ...(await auth()) },
      { dpop: RFC9449_PROOF },
    );
    assert.equal(answer.status, 400);
    assert.ok(['use_dpop_nonce', 'invalid_dpop_proof'].includes(String(answer.body.error)));
  });

  test('a proof without a current nonce is answered use_dpop_nonce with a DPoP-Nonce header', async () => {
    const key = await makeKey();
    const none = await post(
      tokenUrl,
      { ...(await exchangeParams()), ...(await auth()) },
      { dpop: await dpopProof(key, 'POST', tokenUrl) },
    );
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'use_dpop_nonce');
    assert.ok(none.headers.get('dpop-nonce'));
    const wrong = await post(
      tokenUrl,
      { ...(await exchangeParams()), ...(await auth()) },
      { dpop: await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce: 'made-up' } }) },
    );
    assert.equal(wrong.body.error, 'use_dpop_nonce');
  });

  test('proofs with the wrong htu or htm, a stale iat, or a reused jti are invalid_dpop_proof', async () => {
    const key = await makeKey();
    const nonce = await serverNonce();
    const send = async (proof: string) =>
      post(tokenUrl, { ...(await exchangeParams()), ...(await auth()) }, { dpop: proof });
    const reused = await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce } });
    assert.equal((await send(reused)).status, 200);
    const cases: Array<[string, string]> = [
      ['reused jti', reused],
      ['wrong htu', await dpopProof(key, 'POST', `${issuer}/introspect`, undefined, { claims: { nonce } })],
      ['wrong htm', await dpopProof(key, 'GET', tokenUrl, undefined, { claims: { nonce } })],
      [
        'stale iat',
        await dpopProof(key, 'POST', tokenUrl, undefined, {
          claims: { nonce, iat: Math.floor(Date.now() / 1000) - 3600 },
        }),
      ],
      [
        'future iat',
        await dpopProof(key, 'POST', tokenUrl, undefined, {
          claims: { nonce, iat: Math.floor(Date.now() / 1000) + 3600 },
        }),
      ],
      [
        'wrong typ',
        await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce }, header: { typ: 'JWT' } }),
      ],
    ];
    for (const [name, proof] of cases) {
      const answer = await send(proof);
      assert.equal(answer.status, 400, name);
      assert.equal(answer.body.error, 'invalid_dpop_proof', name);
    }
  });
});

describe('introspection (RFC 7662)', () => {
  test('needs client authentication and answers only active:false for tokens that are not yours', async () => {
    const holder = { aoa_holder_jkt: (await makeKey()).jkt };
    const issued = await post(tokenUrl, { ...(await exchangeParams(holder)), ...(await auth()) });
    const token = issued.body.access_token as string;
    const unauthenticated = await post(introspectUrl, { token });
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.body.error, 'invalid_client');
    const wrongAud = await post(introspectUrl, {
      token,
      ...(await auth('argocd', { claims: { aud: introspectUrl } })),
    });
    assert.equal(wrongAud.status, 401);
    const mine = await post(introspectUrl, { token, ...(await auth()) });
    assert.equal(mine.body.active, true);
    assert.equal(mine.body.client_id, 'client:argocd');
    for (const [name, body] of [
      ['not yours', { token, ...(await auth('ci')) }],
      ['unknown', { token: 'eyJhbGciOiJub25lIn0.e30.', ...(await auth()) }],
      ['garbage', { token: 'garbage', ...(await auth()) }],
    ] as const) {
      const answer = await post(introspectUrl, body);
      assert.equal(answer.status, 200, name);
      assert.deepEqual(answer.body, { active: false }, name);
    }
    const admin = await post(introspectUrl, { token, ...(await auth('ops')) });
    assert.equal(admin.body.active, true);
  });
});

describe('rate limiting', () => {
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
