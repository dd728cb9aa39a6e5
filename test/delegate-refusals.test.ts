import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { clientAssertion, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, IDP_AUDIENCE, startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let holder: TestKey;

before(async () => {
  sys = await startSystem();
  holder = await makeKey();
});
after(async () => {
  await sys?.stop();
});

const base = async () => ({
  subjectToken: await sys.idpToken('argocd-sa'),
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  holderJkt: holder.jkt,
});
const proof = async (overrides?: Parameters<typeof clientAssertion>[3]) => ({
  'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer, overrides),
});

async function refused(
  request: Record<string, unknown>,
  metadata: Record<string, string>,
  code: status,
  message: RegExp,
) {
  await assert.rejects(
    callDelegate(sys.client, request, metadata),
    (error: { code: number; details: string }) => {
      assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
      assert.match(error.details, message);
      for (const value of [request.subjectToken, ...Object.values(metadata)]) {
        if (typeof value === 'string' && value.length > 20)
          assert.ok(!error.details.includes(value), 'error echoes token material');
      }
      return true;
    },
  );
}

describe('bad subject tokens', () => {
  it('refuses malformed, oversized, alg none and HS256-with-the-public-key tokens', async () => {
    const b = await base();
    await refused({ ...b, subjectToken: 'abc.def' }, await proof(), status.UNAUTHENTICATED, /malformed/);
    await refused(
      { ...b, subjectToken: 'x'.repeat(20_000) },
      await proof(),
      status.INVALID_ARGUMENT,
      /larger than/,
    );
    const claims = decodeJwt(b.subjectToken);
    const none = new UnsecuredJWT(claims).encode();
    await refused({ ...b, subjectToken: none }, await proof(), status.UNAUTHENTICATED, /algorithm/);
    const jwks = (await (await fetch(sys.idp.jwksUri)).json()) as { keys: Array<Record<string, unknown>> };
    const publicPem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: jwks.keys[0]?.kid as string })
      .sign(Buffer.from(publicPem));
    await refused({ ...b, subjectToken: hs }, await proof(), status.UNAUTHENTICATED, /algorithm/);
  });

  it('refuses an unknown kid, an expired token, a wrong audience and an untrusted issuer', async () => {
    const b = await base();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = Math.floor(Date.now() / 1000);
    const forge = (extra: Record<string, unknown>, kid = 'not-a-kid') =>
      new SignJWT({
        iss: sys.idp.issuer,
        aud: IDP_AUDIENCE,
        sub: 'argocd-sa',
        iat: now,
        exp: now + 60,
        ...extra,
      })
        .setProtectedHeader({ alg: 'ES256', kid })
        .sign(privateKey);
    await refused({ ...b, subjectToken: await forge({}) }, await proof(), status.UNAUTHENTICATED, /kid/);
    await refused(
      { ...b, subjectToken: await forge({ iss: 'https://evil.example' }) },
      await proof(),
      status.UNAUTHENTICATED,
      /not a trusted IdP/,
    );
    const wrongAud = await sys.idp.token('argocd-sa', 'https://other.example');
    await refused({ ...b, subjectToken: wrongAud }, await proof(), status.UNAUTHENTICATED, /aud/);
  });

  it('answers UNAVAILABLE when the IdP is down or serves a broken JWKS, and recovers', async () => {
    const b = await base();
    const fresh = await sys.startIssuer();
    const { credentials } = await import('@grpc/grpc-js');
    const { issuer: pb } = await import('@aoa/proto');
    const client = new pb.IssuerClient(`127.0.0.1:${fresh.grpcPort}`, credentials.createInsecure());
    const assertion = () => clientAssertion('argocd', sys.keys.argocd, fresh.issuer);
    try {
      sys.idp.setDown(true);
      await assert.rejects(
        callDelegate(client, b, { 'client-assertion': await assertion() }),
        (e: { code: number; details: string }) =>
          e.code === status.UNAVAILABLE && /unreachable|answered 503/.test(e.details),
      );
      const nc = await connect({ servers: sys.nats.url });
      const denied = await (await jetstreamManager(nc)).streams.getMessage('AOA_AUDIT', {
        last_by_subj: 'aoa.audit.delegation.denied',
      });
      await nc.close();
      const event = denied?.json<{ data: { code: string; reason: string; client_id: string } }>();
      assert.equal(event?.data.code, 'unavailable', 'an unreachable IdP is an audited outcome too');
      assert.match(event?.data.reason ?? '', /unreachable|answered 503/);
      assert.equal(event?.data.client_id, 'client:argocd');
      sys.idp.setDown(false);
      sys.idp.breakJwks(true);
      await assert.rejects(
        callDelegate(client, b, { 'client-assertion': await assertion() }),
        (e: { code: number; details: string }) => e.code === status.UNAVAILABLE && /JWKS/.test(e.details),
      );
      sys.idp.breakJwks(false);
      const ok = await callDelegate(client, b, { 'client-assertion': await assertion() });
      assert.equal(ok.tokenType, 'DPoP');
    } finally {
      sys.idp.setDown(false);
      sys.idp.breakJwks(false);
      client.close();
      await fresh.stop();
    }
  });
});

describe('caller proof', () => {
  it('refuses an IdP token with no client assertion: a stolen IdP token alone mints nothing', async () => {
    await refused(await base(), {}, status.UNAUTHENTICATED, /bearer token alone mints nothing/);
  });

  it('refuses a client that policy does not allow to present that identity (no confused deputy)', async () => {
    const b = await base();
    await refused(
      b,
      { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
      status.PERMISSION_DENIED,
      /ci/,
    );
    await refused(
      { ...b, subjectToken: await sys.idpToken('intruder') },
      await proof(),
      status.PERMISSION_DENIED,
      /argocd/,
    );
  });

  it('refuses replayed, expired, wrong-audience, over-long, unknown-client and wrongly signed assertions', async () => {
    const b = await base();
    const once = await proof();
    await callDelegate(sys.client, b, once);
    await refused(b, once, status.UNAUTHENTICATED, /replay/);
    const now = Math.floor(Date.now() / 1000);
    await refused(
      b,
      await proof({ claims: { iat: now - 120, exp: now - 60 } }),
      status.UNAUTHENTICATED,
      /expired/,
    );
    await refused(
      b,
      await proof({ claims: { aud: 'https://not-the-issuer' } }),
      status.UNAUTHENTICATED,
      /aud/,
    );
    await refused(
      b,
      await proof({ claims: { aud: [sys.issuer.issuer, 'https://other'] } }),
      status.UNAUTHENTICATED,
      /aud/,
    );
    await refused(b, await proof({ lifeSeconds: 3600 }), status.UNAUTHENTICATED, /replay window/);
    await refused(
      b,
      await proof({ claims: { iss: 'nobody', sub: 'nobody' } }),
      status.UNAUTHENTICATED,
      /unknown client/,
    );
    const impostor = await makeKey();
    await refused(
      b,
      { 'client-assertion': await clientAssertion('argocd', impostor, sys.issuer.issuer) },
      status.UNAUTHENTICATED,
      /signature/,
    );
  });
});

describe('requests beyond policy or malformed', () => {
  it('names the field for bad names, scopes, audiences, TTLs and thumbprints', async () => {
    const b = await base();
    for (const [patch, message] of [
      [{ child: 'x.>' }, /child: must match/],
      [{ child: 'a*' }, /child: must match/],
      [{ child: 'dаshboards' }, /child: must match/],
      [{ environment: 'PROD' }, /environment: must match/],
      [{ environment: '' }, /environment: required/],
      [{ scopes: [] }, /scopes: at least one/],
      [{ scopes: Array.from({ length: 1000 }, () => 'read:metrics') }, /scopes: at most/],
      [{ scopes: ['bad scope'] }, /scopes\[0\]/],
      [{ audience: Array.from({ length: 100 }, (_, i) => `https://a${i}`) }, /audience: at most/],
      [{ ttlSeconds: -5 }, /ttl_seconds/],
      [{ holderJkt: 'short' }, /holder_jkt/],
      [{ subjectToken: '' }, /subject_token: required/],
    ] as const) {
      await refused({ ...b, ...patch }, await proof(), status.INVALID_ARGUMENT, message);
    }
  });

  it('refuses scope, audience, TTL, app and environment beyond policy with the rule that refused', async () => {
    const b = await base();
    await refused({ ...b, scopes: ['admin'] }, await proof(), status.PERMISSION_DENIED, /admin/);
    await refused(
      { ...b, audience: ['https://jobs.internal'] },
      await proof(),
      status.PERMISSION_DENIED,
      /audience|jobs/,
    );
    await refused({ ...b, ttlSeconds: 3600 }, await proof(), status.PERMISSION_DENIED, /ttl|lifetime|900/i);
    await refused({ ...b, child: 'unknown-app' }, await proof(), status.PERMISSION_DENIED, /unknown/);
    await refused({ ...b, environment: 'dev' }, await proof(), status.PERMISSION_DENIED, /dev/);
  });
});

describe('fail-closed audit', () => {
  it('records every outcome on AOA_AUDIT before answering, and refuses with UNAVAILABLE when NATS is gone', async () => {
    const nc = await connect({ servers: sys.nats.url });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('AOA_AUDIT');
    assert.equal(info.config.retention, 'limits');
    assert.equal(info.config.discard, 'new');
    assert.equal(info.config.duplicate_window, 120 * 1e9);
    assert.equal(info.config.storage, 'file');
    const before = info.state.messages;
    const issued = await callDelegate(sys.client, await base(), await proof());
    await assert.rejects(callDelegate(sys.client, { ...(await base()), scopes: ['admin'] }, await proof()));
    const msgs = await jsm.streams.info('AOA_AUDIT');
    assert.equal(msgs.state.messages, before + 2);
    const last = await jsm.streams.getMessage('AOA_AUDIT', { last_by_subj: 'aoa.audit.delegation.issued' });
    const event = last?.json<{ id: string; type: string; subject: string; data: Record<string, unknown> }>();
    assert.equal(event?.type, 'delegation.issued');
    assert.equal(event?.subject, issued.jti);
    assert.equal(last?.header?.get('Nats-Msg-Id'), event?.id);
    const denied = await jsm.streams.getMessage('AOA_AUDIT', { last_by_subj: 'aoa.audit.delegation.denied' });
    assert.equal(denied?.json<{ data: { code: string } }>().data.code, 'permission_denied');
    await nc.close();

    const request = await base();
    const metadata = await proof();
    await sys.nats.restart({
      whileDown: () =>
        assert.rejects(
          callDelegate(sys.client, request, metadata),
          (e: { code: number }) => e.code === status.UNAVAILABLE,
        ),
    });
  });
});
