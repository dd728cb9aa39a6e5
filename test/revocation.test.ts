import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { STREAMS } from '@aoa/core';
import { OUTBOX_BUCKET } from '@aoa/revocation';
import {
  createVerifier,
  fastifyProtect,
  protect,
  type Verifier,
  VerifyError,
  type VerifyErrorCode,
} from '@aoa/sdk';
import { status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import Fastify from 'fastify';
import { decodeProtectedHeader, exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callListRevocations, callRevoke, startRevoker } from './support/revoker.js';
import {
  callDelegate,
  callIntrospect,
  rootDelegateAsArgocd,
  startSystem,
  type TestSystem,
} from './support/system.js';

const RESOURCE = 'https://metrics.internal';
const URL_ = `${RESOURCE}/api/v1/series`;

let sys: TestSystem;
let rev: Awaited<ReturnType<typeof startRevoker>>;
let nc: NatsConnection;
let verifier: Verifier;
let dashboardsKey: TestKey;

before(async () => {
  sys = await startSystem();
  rev = await startRevoker(sys);
  dashboardsKey = await makeKey();
  nc = await connect({ servers: sys.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  verifier = createVerifier({ issuer: sys.issuer.issuer, audience: RESOURCE, nats: nc });
  await verifier.whenReady();
});
after(async () => {
  verifier?.close();
  await nc?.close();
  await rev?.stop();
  await sys?.stop();
});

const assertion = (client: 'argocd' | 'ops' | 'ci') =>
  clientAssertion(
    client,
    client === 'ops' ? sys.keys.admin : client === 'ci' ? sys.keys.ci : sys.keys.argocd,
    sys.issuer.issuer,
  );
const revokeHtu = () => `${rev.revoker.grpcUrl}/aoa.v1.Revoker/Revoke`;

interface Chain {
  root: string;
  child: string;
  grandchild: string;
  jtis: [string, string, string];
  jobsKey: TestKey;
  reportsKey: TestKey;
}

async function rootToken(): Promise<{ accessToken: string; jti: string }> {
  return rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: dashboardsKey.jkt });
}

async function subDelegate(parent: string, key: TestKey, request: Record<string, unknown>) {
  const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
  return callDelegate(
    sys.client,
    { subjectToken: parent, environment: 'prod', scopes: ['read:metrics'], ...request },
    { dpop: await dpopProof(key, 'POST', htu, parent) },
  );
}

/** root (dashboards, requested by client argocd) -> child (jobs) -> grandchild (reports), all DPoP-bound. */
async function chain(): Promise<Chain> {
  const jobsKey = await makeKey('ES256');
  const reportsKey = await makeKey();
  const root = await rootToken();
  const child = await subDelegate(root.accessToken, dashboardsKey, { child: 'jobs', holderJkt: jobsKey.jkt });
  const grandchild = await subDelegate(child.accessToken, jobsKey, {
    child: 'reports',
    holderJkt: reportsKey.jkt,
  });
  return {
    root: root.accessToken,
    child: child.accessToken,
    grandchild: grandchild.accessToken,
    jtis: [root.jti, child.jti, grandchild.jti],
    jobsKey,
    reportsKey,
  };
}

async function request(token: string, key: TestKey, options: Parameters<typeof dpopProof>[4] = {}) {
  return {
    authorization: `DPoP ${token}`,
    dpop: await dpopProof(key, 'GET', URL_, token, options),
    method: 'GET',
    url: URL_,
  };
}

async function refused(
  v: Verifier,
  req: Parameters<Verifier['verify']>[0],
  code: VerifyErrorCode,
  reason?: RegExp,
) {
  await assert.rejects(v.verify(req), (error: unknown) => {
    assert.ok(error instanceof VerifyError, String(error));
    assert.equal(error.code, code, error.reason);
    if (reason) assert.match(error.reason, reason);
    return true;
  });
}

/** Polls until `check` passes (revocation reaches mirrors in milliseconds; the deadline is for a loaded machine). */
async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const grandchildRefused = (c: Chain, v = verifier) =>
  eventually(async () => refused(v, await request(c.grandchild, c.reportsKey), 'invalid_token', /revoked/));

async function introspectActive(token: string): Promise<boolean> {
  return (await callIntrospect(sys.client, token, { 'client-assertion': await assertion('ops') })).active;
}

async function expectCode(promise: Promise<unknown>, code: status, message?: RegExp) {
  await assert.rejects(promise, (error: { code: number; details: string }) => {
    assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
    if (message) assert.match(error.details, message);
    return true;
  });
}

describe('cascading revocation over a three-level chain', () => {
  it('accepts a valid grandchild at the verifier before any revocation', async () => {
    const c = await chain();
    const claims = await verifier.verify(await request(c.grandchild, c.reportsKey));
    assert.equal(claims.jti, c.jtis[2]);
    assert.deepEqual(
      claims.aoa_lineage.map((l) => l.jti),
      c.jtis.slice(0, 2),
    );
  });

  it('the holder revoking the root jti makes the grandchild fail at a verifier and at introspection; a repeat is idempotent', async () => {
    const c = await chain();
    assert.equal(await introspectActive(c.grandchild), true);
    const md = async () => ({
      dpop: await dpopProof(dashboardsKey, 'POST', revokeHtu(), c.root),
      authorization: `DPoP ${c.root}`,
    });
    const first = await callRevoke(rev.client, { jti: c.jtis[0], reason: 'leaked' }, await md());
    assert.equal(first.key, `jti.${c.jtis[0]}`);
    await grandchildRefused(c);
    await eventually(async () => assert.equal(await introspectActive(c.grandchild), false));
    const again = await callRevoke(rev.client, { jti: c.jtis[0] }, await md());
    assert.equal(again.revocationId, first.revocationId);
    assert.equal(again.atMs, first.atMs);
  });

  it('the requesting client may revoke a descendant by presenting its token and the descendant; siblings stay valid', async () => {
    const c = await chain();
    await callRevoke(
      rev.client,
      { jti: c.jtis[2] },
      { 'client-assertion': await assertion('argocd'), 'aoa-token': [c.root, c.grandchild] },
    );
    await grandchildRefused(c);
    assert.equal(await introspectActive(c.child), true);
    await expectCode(
      callRevoke(
        rev.client,
        { jti: c.jtis[1] },
        { 'client-assertion': await assertion('ci'), 'aoa-token': [c.root, c.child] },
      ),
      status.PERMISSION_DENIED,
    );
  });

  it("an app watermark revokes the child's app and its descendants, leaves other apps untouched, and spares tokens minted after it", async () => {
    const c = await chain();
    const other = await rootToken();
    await callRevoke(
      rev.client,
      { app: { environment: 'prod', child: 'jobs' }, reason: 'incident' },
      { 'client-assertion': await assertion('ops') },
    );
    await grandchildRefused(c);
    await verifier.verify(await request(other.accessToken, dashboardsKey));
    await new Promise((r) => setTimeout(r, 5));
    const fresh = await chain();
    await verifier.verify(await request(fresh.grandchild, fresh.reportsKey));
    assert.equal(await introspectActive(fresh.grandchild), true);
  });

  it('a verifier started after a revocation still refuses the token', async () => {
    const c = await chain();
    await callRevoke(rev.client, { jti: c.jtis[1] }, { 'client-assertion': await assertion('ops') });
    // Asked in the same tick as it is made, before its watches can have synchronised.
    const first = await request(c.grandchild, c.reportsKey);
    const late = createVerifier({ issuer: sys.issuer.issuer, audience: RESOURCE, nats: nc });
    try {
      await refused(late, first, 'unavailable', /not_synchronised/);
      await late.whenReady();
      await refused(late, await request(c.grandchild, c.reportsKey), 'invalid_token', /jti revocation/);
    } finally {
      late.close();
    }
  });

  it('lists revocations: administrators all, others only theirs or by jti', async () => {
    const ops = await callListRevocations(
      rev.client,
      { kind: 'app' },
      { 'client-assertion': await assertion('ops') },
    );
    assert.ok(ops.revocations.some((r) => r.key === 'app.prod.jobs' && r.by === 'client:ops'));
    const mine = await callListRevocations(rev.client, {}, { 'client-assertion': await assertion('argocd') });
    assert.ok(mine.revocations.length > 0);
    assert.ok(mine.revocations.every((r) => r.by === 'client:argocd'));
  });
});

describe('refusals at the revoker', () => {
  it('refuses a call without a caller proof, and a DPoP proof without the token', async () => {
    await expectCode(
      callRevoke(rev.client, { jti: 'A'.repeat(22) }, {}),
      status.UNAUTHENTICATED,
      /caller proof required/,
    );
    const key = await makeKey();
    await expectCode(
      callRevoke(rev.client, { jti: 'A'.repeat(22) }, { dpop: await dpopProof(key, 'POST', revokeHtu()) }),
      status.UNAUTHENTICATED,
      /authorization: DPoP/,
    );
  });

  it('refuses a non-administrator revoking an app, a subject or a key, or a jti it does not own', async () => {
    const md = async () => ({ 'client-assertion': await assertion('argocd') });
    await expectCode(
      callRevoke(rev.client, { app: { environment: 'prod', child: 'reports' } }, await md()),
      status.PERMISSION_DENIED,
      /administrators/,
    );
    await expectCode(
      callRevoke(rev.client, { subject: 'idp:corp:sre-bot' }, await md()),
      status.PERMISSION_DENIED,
    );
    await expectCode(callRevoke(rev.client, { kid: 'k1' }, await md()), status.PERMISSION_DENIED);
    await expectCode(
      callRevoke(rev.client, { jti: 'A'.repeat(22) }, await md()),
      status.PERMISSION_DENIED,
      /aoa-token/,
    );
  });

  it('refuses malformed ids and names outside the app/env pattern', async () => {
    const md = async () => ({ 'client-assertion': await assertion('ops') });
    await expectCode(
      callRevoke(rev.client, { jti: 'not a jti' }, await md()),
      status.INVALID_ARGUMENT,
      /jti/,
    );
    await expectCode(callRevoke(rev.client, { kid: 'a.>' }, await md()), status.INVALID_ARGUMENT, /kid/);
    for (const bad of ['Prod', 'prod.*', '>', '-x', 'a'.repeat(64)]) {
      await expectCode(
        callRevoke(rev.client, { app: { environment: bad, child: 'jobs' } }, await md()),
        status.INVALID_ARGUMENT,
        /environment/,
      );
      await expectCode(
        callRevoke(rev.client, { app: { environment: 'prod', child: bad } }, await md()),
        status.INVALID_ARGUMENT,
        /child/,
      );
    }
    await expectCode(callRevoke(rev.client, {}, await md()), status.INVALID_ARGUMENT, /exactly one/);
  });

  it('refuses a replayed DPoP proof and a tampered presented token', async () => {
    const c = await chain();
    const proof = await dpopProof(c.reportsKey, 'POST', revokeHtu(), c.grandchild);
    const md = { dpop: proof, authorization: `DPoP ${c.grandchild}` };
    await callRevoke(rev.client, { jti: c.jtis[2] }, md);
    await expectCode(callRevoke(rev.client, { jti: c.jtis[2] }, md), status.UNAUTHENTICATED, /replay/);
    await expectCode(
      callRevoke(
        rev.client,
        { jti: c.jtis[1] },
        { 'client-assertion': await assertion('argocd'), 'aoa-token': [c.root, alterLineage(c.grandchild)] },
      ),
      status.UNAUTHENTICATED,
      /signature/,
    );
  });
});

/** The same signature over a payload whose lineage names another ancestor. */
function alterLineage(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  payload.aoa_lineage[0].jti = 'Z'.repeat(22);
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

describe('the verifier refuses bad DPoP and bad tokens', () => {
  it('refuses replayed, stale, wrong-htu, alg none, HS256, private-key and wrong-ath proofs', async () => {
    const c = await chain();
    const key = c.reportsKey;
    const good = await request(c.grandchild, key);
    await verifier.verify(good);
    await refused(verifier, good, 'invalid_dpop_proof', /replay/);
    const now = Math.floor(Date.now() / 1000);
    await refused(
      verifier,
      await request(c.grandchild, key, { claims: { iat: now - 600 } }),
      'invalid_dpop_proof',
      /stale/,
    );
    await refused(
      verifier,
      await request(c.grandchild, key, { claims: { htu: `${RESOURCE}/other` } }),
      'invalid_dpop_proof',
      /htu/,
    );
    await refused(
      verifier,
      await request(c.grandchild, key, { claims: { htm: 'POST' } }),
      'invalid_dpop_proof',
      /htm/,
    );
    await refused(
      verifier,
      await request(c.grandchild, key, { claims: { ath: 'A'.repeat(43) } }),
      'invalid_dpop_proof',
      /ath/,
    );
    const privateJwk = await exportJWK(key.privateKey);
    await refused(
      verifier,
      await request(c.grandchild, key, { header: { jwk: privateJwk } }),
      'invalid_dpop_proof',
      /private key/,
    );
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const claims = { jti: 'n'.repeat(22), htm: 'GET', htu: URL_, iat: now };
    const none = `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${b64(claims)}.`;
    await refused(verifier, { ...good, dpop: none }, 'invalid_dpop_proof', /algorithm/);
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk })
      .sign(new Uint8Array(32));
    await refused(verifier, { ...good, dpop: hs }, 'invalid_dpop_proof', /algorithm/);
    const otherKey = await makeKey();
    await refused(verifier, await request(c.grandchild, otherKey), 'invalid_dpop_proof', /binding/);
  });

  it('refuses a bound token presented as Bearer, with a DPoP challenge', async () => {
    const c = await chain();
    await assert.rejects(
      verifier.verify({ authorization: `Bearer ${c.grandchild}`, dpop: undefined, method: 'GET', url: URL_ }),
      (error: unknown) => {
        assert.ok(error instanceof VerifyError);
        assert.equal(error.code, 'invalid_token');
        assert.match(error.wwwAuthenticate, /^DPoP algs="EdDSA ES256", error="invalid_token"/);
        return true;
      },
    );
  });

  it('refuses a token whose aoa_lineage was altered (the signature catches it), and another audience', async () => {
    const c = await chain();
    await refused(
      verifier,
      await request(alterLineage(c.grandchild), c.reportsKey),
      'invalid_token',
      /signature/,
    );
    const other = createVerifier({ issuer: sys.issuer.issuer, audience: 'https://jobs.internal', nats: nc });
    await other.whenReady();
    await refused(other, await request(c.grandchild, c.reportsKey), 'invalid_token', /aud/);
    other.close();
  });

  it('protects a node:http server: 401 with a challenge without a token, 200 with a valid one', async () => {
    const server = createServer(
      protect(verifier, (_req, res, claims) => void res.end(claims.jti), { origin: RESOURCE }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const anonymous = await fetch(`${base}/api/v1/series`);
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /DPoP algs=/);
      const c = await chain();
      const ok = await fetch(`${base}/api/v1/series`, { headers: await request(c.grandchild, c.reportsKey) });
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), c.jtis[2]);
    } finally {
      server.close();
    }
  });
});

describe('the Fastify adapter', () => {
  it('sets request.aoa for a valid token; refuses no token, a Bearer downgrade and a revoked token', async () => {
    const app = Fastify();
    app.addHook('onRequest', fastifyProtect(verifier, { origin: RESOURCE }));
    app.get('/api/v1/series', async (request) => ({ jti: request.aoa?.jti, sub: request.aoa?.sub }));
    const c = await chain();
    const headers = async () => {
      const { authorization, dpop } = await request(c.grandchild, c.reportsKey);
      return { authorization, dpop };
    };
    try {
      const ok = await app.inject({ method: 'GET', url: '/api/v1/series', headers: await headers() });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.json<{ jti: string }>().jti, c.jtis[2]);

      const anonymous = await app.inject({ method: 'GET', url: '/api/v1/series' });
      assert.equal(anonymous.statusCode, 401);
      assert.match(String(anonymous.headers['www-authenticate']), /DPoP algs=/);
      assert.equal(anonymous.headers['cache-control'], 'no-store');

      const downgraded = await app.inject({
        method: 'GET',
        url: '/api/v1/series',
        headers: { authorization: `Bearer ${c.grandchild}` },
      });
      assert.equal(downgraded.statusCode, 401);
      assert.equal(downgraded.json<{ error: string }>().error, 'invalid_token');

      await callRevoke(rev.client, { jti: c.jtis[0] }, { 'client-assertion': await assertion('ops') });
      await grandchildRefused(c);
      const revoked = await app.inject({ method: 'GET', url: '/api/v1/series', headers: await headers() });
      assert.equal(revoked.statusCode, 401);
      assert.match(revoked.json<{ error_description: string }>().error_description, /revoked/);
    } finally {
      await app.close();
    }
  });
});

describe('interop: oauth4webapi validateJwtAccessToken', () => {
  it('accepts a valid DPoP-bound token and rejects its Bearer downgrade', async () => {
    const metadata = (await (
      await fetch(`http://127.0.0.1:${sys.issuer.httpPort}/.well-known/oauth-authorization-server`)
    ).json()) as oauth.AuthorizationServer;
    const c = await chain();
    const options = { [oauth.allowInsecureRequests]: true };
    const headers = await request(c.grandchild, c.reportsKey);
    const claims = await oauth.validateJwtAccessToken(
      metadata,
      new Request(URL_, { headers: { authorization: headers.authorization, dpop: headers.dpop } }),
      RESOURCE,
      options,
    );
    assert.equal(claims.jti, c.jtis[2]);
    await assert.rejects(
      oauth.validateJwtAccessToken(
        metadata,
        new Request(URL_, { headers: { authorization: `Bearer ${c.grandchild}` } }),
        RESOURCE,
        options,
      ),
      (error: Error) => {
        assert.match(`${error.message} ${String((error as { cause?: unknown }).cause ?? '')}`, /dpop/i);
        return true;
      },
    );
  });
});

/** Publishes a notice for `key` alone, with no KV entry behind it. */
const publishNotice = (key: string) =>
  nc.publish(
    'aoa.revoked.all',
    JSON.stringify({ revocation_id: `notice-${key}`, key, kind: key.split('.')[0], at_ms: Date.now() }),
  );

describe('revocation notices: the fast path ahead of the KV watch', () => {
  it('applies a notice at once, ignores malformed ones, and never lets a notice lift a revocation', async () => {
    const c = await chain();
    await verifier.verify(await request(c.grandchild, c.reportsKey));
    // Garbage on the notice subject changes nothing and breaks nothing.
    nc.publish('aoa.revoked.all', 'not json');
    nc.publish('aoa.revoked.all', JSON.stringify({ key: 'jti.', at_ms: 'soon' }));
    await nc.flush();
    await verifier.verify(await request(c.grandchild, c.reportsKey));
    // A notice alone (no KV entry behind it) is enough for this mirror to refuse the child's token.
    publishNotice(`jti.${c.jtis[1]}`);
    await nc.flush();
    await grandchildRefused(c);
    // An older app watermark in a notice does not move a newer one back.
    const other = await chain();
    await callRevoke(
      rev.client,
      { app: { environment: 'prod', child: 'reports' } },
      { 'client-assertion': await assertion('ops') },
    );
    await grandchildRefused(other);
    nc.publish(
      'aoa.revoked.all',
      JSON.stringify({ revocation_id: 'n2', key: 'app.prod.reports', kind: 'app', at_ms: 1 }),
    );
    await nc.flush();
    await refused(verifier, await request(other.grandchild, other.reportsKey), 'invalid_token', /revoked/);
  });

  it('verifiers on one connection share one notice subscription and one KV watch per bucket, which outlive any one of them', async () => {
    const shared = await connect({ servers: sys.nats.url });
    const jsm = await jetstreamManager(shared);
    const watches = async () =>
      Promise.all(
        ['KV_aoa_keys', 'KV_aoa_revocations'].map(
          async (stream) => (await jsm.streams.info(stream)).state.consumer_count,
        ),
      );
    const alone = await watches();
    const make = () => createVerifier({ issuer: sys.issuer.issuer, audience: RESOURCE, nats: shared });
    const verifiers = [make(), make(), make()];
    try {
      await Promise.all(verifiers.map((v) => v.whenReady()));
      assert.deepEqual(
        await watches(),
        alone.map((n) => n + 1),
        'three verifiers on one connection: one more consumer on each bucket',
      );
      const c = await chain();
      for (const v of verifiers) await v.verify(await request(c.grandchild, c.reportsKey));
      // Fifty notices, no KV entries behind them: each verifier applies all fifty, yet the connection
      // receives each once (well under twice; a stray consumer heartbeat may add a message or two).
      const NOTICES = 50;
      const keys = Array.from({ length: NOTICES }, (_, i) => (i === 0 ? `jti.${c.jtis[2]}` : `jti.n-${i}`));
      const applied = verifiers.map(
        (v) =>
          new Promise<void>((resolve) => {
            const seen = new Set<string>();
            v.onRevocationChange((key) => {
              if (keys.includes(key)) seen.add(key);
              if (seen.size === NOTICES) resolve();
            });
          }),
      );
      const before = shared.stats().inMsgs;
      for (const key of keys) publishNotice(key);
      await Promise.all(applied);
      const received = shared.stats().inMsgs - before;
      assert.ok(received >= NOTICES && received < 2 * NOTICES, `${received} messages for ${NOTICES} notices`);
      for (const v of verifiers) await grandchildRefused(c, v);

      // Closing two leaves the third subscribed; a verifier made after all are closed subscribes anew.
      verifiers[0]?.close();
      verifiers[1]?.close();
      const d = await chain();
      const third = verifiers[2] as Verifier;
      await third.verify(await request(d.grandchild, d.reportsKey));
      publishNotice(`jti.${d.jtis[2]}`);
      await grandchildRefused(d, third);
      third.close();
      const later = make();
      verifiers.push(later);
      await later.whenReady();
      const e = await chain();
      await later.verify(await request(e.grandchild, e.reportsKey));
      publishNotice(`jti.${e.jtis[2]}`);
      await grandchildRefused(e, later);
    } finally {
      for (const v of verifiers) v.close();
      await shared.close();
    }
  });
});

describe('keys, restarts and audit outages', () => {
  it('revoking the signing kid (after rotating away from it) revokes the whole chain', async () => {
    const c = await chain();
    const kid = decodeProtectedHeader(c.child).kid as string;
    await sys.issuer.keys.activateStandby();
    await callRevoke(
      rev.client,
      { kid, reason: 'key compromised' },
      { 'client-assertion': await assertion('ops') },
    );
    await grandchildRefused(c);
    await eventually(async () => assert.equal(await introspectActive(c.grandchild), false));
    const fresh = await chain();
    assert.notEqual(decodeProtectedHeader(fresh.grandchild).kid, kid);
    await verifier.verify(await request(fresh.grandchild, fresh.reportsKey));
  });

  it('a revocation survives a NATS restart between revocation and check; a verifier cut off past its bound refuses', async () => {
    const c = await chain();
    const strict = createVerifier({
      issuer: sys.issuer.issuer,
      audience: RESOURCE,
      nats: nc,
      stalenessMs: 200,
    });
    await strict.whenReady();
    await callRevoke(rev.client, { jti: c.jtis[0] }, { 'client-assertion': await assertion('ops') });
    const other = await chain();
    await sys.nats.restart({
      whileDown: async () => {
        await new Promise((r) => setTimeout(r, 400));
        await refused(
          strict,
          await request(other.grandchild, other.reportsKey),
          'unavailable',
          /disconnected_too_long/,
        );
      },
    });
    try {
      await grandchildRefused(c, strict);
      await grandchildRefused(c);
      await eventually(async () => assert.equal(await introspectActive(c.grandchild), false));
      await eventually(
        async () => void (await strict.verify(await request(other.grandchild, other.reportsKey))),
      );
    } finally {
      strict.close();
    }
  });

  it('audit available: the event is acknowledged before Revoke answers, and the outbox is never written', async () => {
    const c = await chain();
    const jsm = await jetstreamManager(nc);
    const outbox = `KV_${OUTBOX_BUCKET}`;
    const before = (await jsm.streams.info(outbox)).state.last_seq;
    const response = await callRevoke(
      rev.client,
      { jti: c.jtis[1], reason: 'audit up' },
      { 'client-assertion': await assertion('ops') },
    );
    const last = await jsm.streams.getMessage(STREAMS.audit, { last_by_subj: 'aoa.audit.revocation.issued' });
    assert.equal(last?.json<{ data: { revocation_id: string } }>().data.revocation_id, response.revocationId);
    assert.equal(
      (await jsm.streams.info(outbox)).state.last_seq,
      before,
      'nothing was written to the outbox',
    );
  });

  it('audit unavailable while revoking: the revocation takes effect; the outbox survives a revoker restart and delivers once the stream accepts again', async () => {
    const c = await chain();
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAMS.audit);
    await jsm.streams.update(STREAMS.audit, { ...info.config, max_bytes: info.state.bytes });
    try {
      const response = await callRevoke(
        rev.client,
        { jti: c.jtis[1], reason: 'audit down' },
        { 'client-assertion': await assertion('ops') },
      );
      await grandchildRefused(c);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(rev.revoker.outboxPending() >= 1, 'the audit event waits in the outbox');
      const last = await jsm.streams
        .getMessage(STREAMS.audit, { last_by_subj: 'aoa.audit.revocation.issued' })
        .catch(() => null);
      assert.notEqual(
        last?.json<{ data: { revocation_id: string } }>().data.revocation_id,
        response.revocationId,
      );
      await rev.stop();
      await jsm.streams.update(STREAMS.audit, { ...info.config });
      rev = await startRevoker(sys);
      await eventually(async () => {
        const msg = await jsm.streams.getMessage(STREAMS.audit, {
          last_by_subj: 'aoa.audit.revocation.issued',
        });
        assert.equal(
          msg?.json<{ data: { revocation_id: string } }>().data.revocation_id,
          response.revocationId,
        );
      });
      await eventually(async () => assert.equal(rev.revoker.outboxPending(), 0));
    } finally {
      await jsm.streams.update(STREAMS.audit, { ...info.config });
    }
  });
});
