import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BUCKETS, STREAMS } from '@aoa/core';
import { decodeJwt } from 'jose';
import { type BusProbe, eventually, probeBus } from './support/bus.js';
import { clientAssertion } from './support/oauth.js';
import { type OAuthHarness, oauthHarness, post } from './support/oauth-http.js';
import { startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let h: OAuthHarness;
let bus: BusProbe;

before(async () => {
  sys = await startSystem();
  h = oauthHarness(sys);
  bus = await probeBus(sys.nats.url);
});
after(async () => {
  await bus?.close();
  await sys?.stop();
});

/** Resolves once the issuer's revocation view answers `{"active": false}` for the token. */
const inactive = (token: string) =>
  eventually('token inactive', async () => {
    const answer = await post(h.introspectUrl, { token, ...(await h.auth('ops')) });
    return answer.body.active === false ? true : undefined;
  });

/** The `revocation.issued` audit event for a jti, once the outbox has delivered it. */
const auditOf = (jti: string) =>
  eventually(`revocation.issued for ${jti}`, async () => {
    const last = await bus.lastAudit('revocation.issued').catch(() => undefined);
    return last?.event.data.jti === jti ? last.event : undefined;
  });

describe('introspection (RFC 7662)', () => {
  test('needs client authentication and answers only active:false for tokens that are not yours', async () => {
    const token = await h.issueToken();
    const unauthenticated = await post(h.introspectUrl, { token });
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.body.error, 'invalid_client');
    const wrongAud = await post(h.introspectUrl, {
      token,
      ...(await h.auth('argocd', { claims: { aud: h.introspectUrl } })),
    });
    assert.equal(wrongAud.status, 401);
    const mine = await post(h.introspectUrl, { token, ...(await h.auth()) });
    assert.equal(mine.body.active, true);
    assert.equal(mine.body.client_id, 'client:argocd');
    for (const [name, body] of [
      ['not yours', { token, ...(await h.auth('ci')) }],
      ['unknown', { token: 'eyJhbGciOiJub25lIn0.e30.', ...(await h.auth()) }],
      ['garbage', { token: 'garbage', ...(await h.auth()) }],
    ] as const) {
      const answer = await post(h.introspectUrl, body);
      assert.equal(answer.status, 200, name);
      assert.deepEqual(answer.body, { active: false }, name);
    }
    const admin = await post(h.introspectUrl, { token, ...(await h.auth('ops')) });
    assert.equal(admin.body.active, true);
  });
});

describe('revocation (RFC 7009)', () => {
  test('the requester revokes its token: 200 with an empty body, KV record, notices, audit delivered', async () => {
    const token = await h.issueToken();
    const { jti } = decodeJwt(token);
    const notices = bus.nc.subscribe('aoa.revoked.prod.dashboards', { max: 1 });
    const all = bus.nc.subscribe('aoa.revoked.all', { max: 1 });
    await bus.nc.flush();
    const answer = await post(h.revokeUrl, { token, token_type_hint: 'access_token', ...(await h.auth()) });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, {});
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    await inactive(token);
    const record = (await bus.entries(BUCKETS.revocations)).get(`jti.${jti}`);
    assert.ok(record, 'the revocation is in aoa_revocations');
    assert.equal(JSON.parse(record).by, 'client:argocd');
    for (const sub of [notices, all]) {
      for await (const msg of sub) assert.equal(msg.json<{ key: string }>().key, `jti.${jti}`);
    }
    const event = await auditOf(String(jti));
    assert.equal(event.type, 'revocation.issued');
    assert.equal(event.data.by, 'client:argocd');
    assert.equal(event.data.app, 'dashboards');

    const again = await post(h.revokeUrl, { token, ...(await h.auth()) });
    assert.equal(again.status, 200, 'revoking twice is harmless');
  });

  test('an admin may revoke any token; another client is refused with unauthorized_client', async () => {
    const token = await h.issueToken();
    const refused = await post(h.revokeUrl, { token, ...(await h.auth('ci')) });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');
    const still = await post(h.introspectUrl, { token, ...(await h.auth()) });
    assert.equal(still.body.active, true, 'a refused revocation has no effect');
    const admin = await post(h.revokeUrl, { token, ...(await h.auth('ops')) });
    assert.equal(admin.status, 200);
    await inactive(token);
    assert.equal((await auditOf(String(decodeJwt(token).jti))).data.by, 'client:ops');
  });

  test('unknown, invalid and foreign tokens are answered 200 with no effect', async () => {
    const before = (await bus.entries(BUCKETS.revocations)).size;
    const idpToken = await sys.idpToken('argocd-sa');
    for (const token of ['garbage', 'eyJhbGciOiJub25lIn0.e30.', idpToken]) {
      const answer = await post(h.revokeUrl, { token, ...(await h.auth()) });
      assert.equal(answer.status, 200, token.slice(0, 12));
      assert.deepEqual(answer.body, {});
    }
    assert.equal((await bus.entries(BUCKETS.revocations)).size, before);
  });

  test('the caller must authenticate with private_key_jwt and send exactly one token', async () => {
    const token = await h.issueToken();
    const cases: Array<[string, Array<[string, string]>, number, string]> = [
      ['no authentication', [['token', token]], 401, 'invalid_client'],
      [
        'wrong audience',
        [['token', token], ...Object.entries(await h.auth('argocd', { claims: { aud: h.revokeUrl } }))],
        401,
        'invalid_client',
      ],
      [
        'unknown client',
        [
          ['token', token],
          ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          ['client_assertion', await clientAssertion('nobody', sys.keys.argocd, h.issuer)],
        ],
        401,
        'invalid_client',
      ],
      ['no token', Object.entries(await h.auth()), 400, 'invalid_request'],
      [
        'two tokens',
        [['token', token], ['token', token], ...Object.entries(await h.auth())],
        400,
        'invalid_request',
      ],
    ];
    for (const [name, body, status, error] of cases) {
      const answer = await post(h.revokeUrl, body);
      assert.equal(answer.status, status, name);
      assert.equal(answer.body.error, error, name);
    }
    assert.equal((await post(h.introspectUrl, { token, ...(await h.auth()) })).body.active, true);
  });

  test('audit unavailable: the revocation takes effect and the issuer outbox delivers it later', async () => {
    const token = await h.issueToken();
    const jti = String(decodeJwt(token).jti);
    const info = await bus.jsm.streams.info(STREAMS.audit);
    await bus.jsm.streams.update(STREAMS.audit, { ...info.config, max_bytes: info.state.bytes });
    try {
      const answer = await post(h.revokeUrl, { token, ...(await h.auth()) });
      assert.equal(answer.status, 200, 'revocation is never blocked by audit');
      await inactive(token);
      const last = await bus.lastAudit('revocation.issued').catch(() => undefined);
      assert.notEqual(last?.event.data.jti, jti, 'not audited while the stream refuses');
    } finally {
      await bus.jsm.streams.update(STREAMS.audit, { ...info.config });
    }
    assert.equal((await auditOf(jti)).data.jti, jti);
  });
});
