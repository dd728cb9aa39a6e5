import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { dpopProof, makeKey } from './support/oauth.js';
import { ACCESS_TOKEN, EXCHANGE, JWT, type OAuthHarness, oauthHarness, post } from './support/oauth-http.js';
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

describe('token exchange: the child and its key', () => {
  test('an actor_token names the child and binds the token to its key; the child sub-delegates with DPoP', async () => {
    const childKey = await makeKey('ES256');
    const first = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ aoa_child: '' })),
      ...(await h.auth()),
      actor_token: await h.actorToken(childKey, 'dashboards'),
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
    const nonce = await h.serverNonce();
    const subDelegation = {
      grant_type: EXCHANGE,
      subject_token: parentToken,
      subject_token_type: ACCESS_TOKEN,
      aoa_child: 'jobs',
      aoa_environment: 'prod',
      scope: 'read:metrics',
    };
    const subDelegate = async (extra: Record<string, string>) =>
      post(
        h.tokenUrl,
        { ...subDelegation, resource: 'https://metrics.internal', ...extra },
        { dpop: await dpopProof(childKey, 'POST', h.tokenUrl, parentToken, { claims: { nonce } }) },
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
      h.tokenUrl,
      { ...subDelegation, aoa_holder_jkt: grandchild.jkt },
      { dpop: await dpopProof(otherKey, 'POST', h.tokenUrl, parentToken, { claims: { nonce } }) },
    );
    assert.equal(mismatched.status, 400);
    assert.equal(mismatched.body.error, 'invalid_dpop_proof');
  });

  test('a parent DPoP proof binds the token to the parent key when nothing else names one', async () => {
    const key = await makeKey();
    const nonce = await h.serverNonce();
    const answer = await post(
      h.tokenUrl,
      { ...(await h.exchangeParams()), ...(await h.auth()) },
      { dpop: await dpopProof(key, 'POST', h.tokenUrl, undefined, { claims: { nonce } }) },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(decodeJwt(answer.body.access_token as string).cnf, { jkt: key.jkt });
    assert.ok(answer.headers.get('dpop-nonce'));
  });

  test('refuses actor tokens that are replayed, for another audience, or disagree with aoa_child', async () => {
    const key = await makeKey();
    const token = await h.actorToken(key, 'dashboards');
    const base = async () => ({
      ...(await h.exchangeParams({ aoa_child: '' })),
      ...(await h.auth()),
      actor_token_type: JWT,
    });
    assert.equal((await post(h.tokenUrl, { ...(await base()), actor_token: token })).status, 200);
    const replayed = await post(h.tokenUrl, { ...(await base()), actor_token: token });
    assert.equal(replayed.body.error, 'invalid_request');
    assert.match(String(replayed.body.error_description), /replay/);
    const wrongAud = await post(h.tokenUrl, {
      ...(await base()),
      actor_token: await h.actorToken(key, 'dashboards', { aud: 'https://elsewhere' }),
    });
    assert.equal(wrongAud.body.error, 'invalid_request');
    const disagree = await post(h.tokenUrl, {
      ...(await base()),
      aoa_child: 'jobs',
      actor_token: await h.actorToken(key, 'dashboards'),
    });
    assert.equal(disagree.body.error, 'invalid_request');
  });
});

describe('token exchange: policy refusals', () => {
  test('policy refusals map to invalid_target, invalid_scope and unauthorized_client', async () => {
    const target = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ audience: 'https://jobs.internal' })),
      ...(await h.auth()),
    });
    assert.equal(target.body.error, 'invalid_target');
    const scope = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ scope: 'admin' })),
      ...(await h.auth()),
    });
    assert.equal(scope.body.error, 'invalid_scope');
    const notYours = await post(h.tokenUrl, { ...(await h.exchangeParams()), ...(await h.auth('ci')) });
    assert.equal(notYours.body.error, 'unauthorized_client');
    const badToken = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ subject_token: 'not-a-jwt' })),
      ...(await h.auth()),
    });
    assert.equal(badToken.body.error, 'invalid_request');
  });

  test('may_act in a subject token must name the requesting client', async () => {
    const sreBot = (mayAct: string) =>
      sys.idp.addClient({
        clientId: 'sre-bot',
        clientSecret: 'sre-secret',
        groups: ['sre', 'platform'],
        mayAct,
      });
    sreBot('client:argocd');
    const subject = await sys.idpToken('sre-bot');
    assert.deepEqual(decodeJwt(subject).may_act, { sub: 'client:argocd' });
    const refused = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ subject_token: subject })),
      ...(await h.auth('ops')),
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');
    assert.match(String(refused.body.error_description), /may_act/);
    sreBot('client:ops');
    const allowed = await post(h.tokenUrl, {
      ...(await h.exchangeParams({
        subject_token: await sys.idpToken('sre-bot'),
        aoa_holder_jkt: (await makeKey()).jkt,
      })),
      ...(await h.auth('ops')),
    });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  });
});
