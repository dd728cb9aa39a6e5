import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, type PublishedKeyRecord } from '@aoa/core';
import type { issuer as pb } from '@aoa/proto';
import { createVerifier } from '@aoa/sdk';
import { type NatsServer, startNats } from '@aoa/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { RunningIssuer } from '../services/issuer/src/app.js';
import { SealedKeyStore } from '../services/issuer/src/keys/sealed-store.js';
import { type BusProbe, issuerClient, issuerMetadata, probeBus } from './support/bus.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

let holder: TestKey;
before(async () => {
  holder = await makeKey();
});

/** A root delegation through one issuer instance, by the argocd parent controller. */
async function delegateThrough(sys: TestSystem, issuer: RunningIssuer, client: pb.IssuerClient) {
  return callDelegate(
    client,
    {
      subjectToken: await sys.idpToken('argocd-sa'),
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    },
    { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, issuer.issuer) },
  );
}

const kidOf = (token: string): string => {
  const { kid } = decodeProtectedHeader(token);
  assert.ok(kid, 'token header names no kid');
  return kid;
};

async function publishedKeys(bus: BusProbe): Promise<Map<string, PublishedKeyRecord>> {
  const out = new Map<string, PublishedKeyRecord>();
  for (const [kid, text] of await bus.entries(BUCKETS.keys)) out.set(kid, JSON.parse(text));
  return out;
}

const kidsIn = (keys: Map<string, PublishedKeyRecord>, state: PublishedKeyRecord['state']) =>
  [...keys.values()].filter((k) => k.state === state).map((k) => k.kid);

/** Verifies a token the way an independent resource server does: metadata, then `jwks_uri`. */
async function verifyThroughJwksUri(issuer: RunningIssuer, token: string) {
  const metadata = await issuerMetadata(issuer);
  const jwks = createRemoteJWKSet(new URL(String(metadata.jwks_uri)));
  return jwtVerify(token, jwks, { issuer: String(metadata.issuer), typ: 'at+jwt' });
}

/**
 * Two issuer replicas of `sys` on `nats`, started together as a rollout starts them. When one fails, the other
 * is stopped (and `nats` with it) before the failure is thrown, so the file does not hang on it.
 */
async function startReplicas(sys: TestSystem, nats: NatsServer): Promise<RunningIssuer[]> {
  const started = await Promise.allSettled([
    sys.startIssuer({ NATS_URL: nats.url }),
    sys.startIssuer({ NATS_URL: nats.url }),
  ]);
  const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(replicas.map((issuer) => issuer.stop()));
    await nats.stop();
    throw failed.reason;
  }
  return replicas;
}

describe('memory key manager', () => {
  let sys: TestSystem;
  let bus: BusProbe;
  before(async () => {
    sys = await startSystem();
    bus = await probeBus(sys.nats.url);
  });
  after(async () => {
    await bus?.close();
    await sys?.stop();
  });

  it('publishes the active and a standby key in aoa_keys before the first token is signed', async () => {
    const beforeFirstToken = await publishedKeys(bus);
    const active = kidsIn(beforeFirstToken, 'active');
    const standby = kidsIn(beforeFirstToken, 'standby');
    assert.equal(active.length, 1, `expected one active key, found ${active.length}`);
    assert.equal(standby.length, 1, `expected one standby key, found ${standby.length}`);
    assert.notEqual(active[0], standby[0]);
    for (const record of beforeFirstToken.values()) {
      assert.equal(record.jwk.kid, record.kid);
      assert.equal('d' in record.jwk, false, 'a published key carries private material');
    }

    const metadata = await issuerMetadata(sys.issuer);
    const jwks = (await (await fetch(String(metadata.jwks_uri))).json()) as { keys: Array<{ kid: string }> };
    assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [...active, ...standby].sort());

    const tokens = [
      await delegateThrough(sys, sys.issuer, sys.client),
      await delegateThrough(sys, sys.issuer, sys.client),
    ];
    for (const { accessToken } of tokens) {
      assert.ok(active.includes(kidOf(accessToken)), 'token signed by a key not published as active');
      await verifyThroughJwksUri(sys.issuer, accessToken);
    }
  });

  it('activating the standby signs with it, publishes a new standby at once and keeps the old key as retired', async () => {
    const earlier = await delegateThrough(sys, sys.issuer, sys.client);
    const oldActive = kidOf(earlier.accessToken);
    const oldStandby = sys.issuer.keys.standbyKid();

    const switched = await sys.issuer.keys.activateStandby();
    assert.equal(switched.retired, oldActive);
    assert.equal(switched.active, oldStandby);
    assert.notEqual(switched.standby, oldActive);
    assert.notEqual(switched.standby, oldStandby);

    const published = await publishedKeys(bus);
    assert.equal(published.get(oldStandby)?.state, 'active');
    assert.equal(published.get(switched.standby)?.state, 'standby');
    assert.equal(published.get(oldActive)?.state, 'retired');
    assert.ok(published.get(oldActive)?.retired_ms, 'the retired key has no retired_ms');
    assert.deepEqual(kidsIn(published, 'active'), [oldStandby]);

    const later = await delegateThrough(sys, sys.issuer, sys.client);
    assert.equal(kidOf(later.accessToken), oldStandby);
    await verifyThroughJwksUri(sys.issuer, later.accessToken);
    const { protectedHeader } = await verifyThroughJwksUri(sys.issuer, earlier.accessToken);
    assert.equal(protectedHeader.kid, oldActive);

    const prepared = await bus.lastAudit('key.prepared');
    const activated = await bus.lastAudit('key.activated');
    const retired = await bus.lastAudit('key.retired');
    assert.equal(prepared?.event.subject, switched.standby);
    assert.equal(prepared?.event.data.state, 'standby');
    assert.equal(activated?.event.subject, oldStandby);
    assert.equal(activated?.event.data.state, 'active');
    assert.equal(retired?.event.subject, oldActive);
    assert.equal(retired?.event.data.state, 'retired');
    assert.ok(
      prepared && activated && prepared.seq < activated.seq,
      'the next standby must be prepared before the switch is announced',
    );
  });
});

describe('sealed key manager', () => {
  let sys: TestSystem;
  let bus: BusProbe;
  let dir: string;
  const kek = randomBytes(32).toString('hex');
  const wrongKek = randomBytes(32).toString('hex');
  let kekFile: string;
  let wrongKekFile: string;
  let shortKekFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-kek-'));
    kekFile = join(dir, 'kek');
    wrongKekFile = join(dir, 'wrong-kek');
    shortKekFile = join(dir, 'short-kek');
    await writeFile(kekFile, `${kek}\n`, { mode: 0o600 });
    await writeFile(wrongKekFile, wrongKek, { mode: 0o600 });
    await writeFile(shortKekFile, 'abcdef0123', { mode: 0o600 });
    sys = await startSystem({ AOA_KEY_MANAGER: 'sealed', AOA_KEK_FILE: kekFile });
    bus = await probeBus(sys.nats.url);
  });
  after(async () => {
    await bus?.close();
    await sys?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a restart keeps signing with keys that were published before use, and old tokens still verify', async () => {
    const first = sys.issuer;
    const token = await delegateThrough(sys, first, sys.client);
    const kid = kidOf(token.accessToken);
    const standby = first.keys.standbyKid();
    await first.stop();

    // Same address, so the same issuer identifier: a restart, not a second issuer.
    const restarted = await sys.startIssuer({ AOA_ISSUER_HTTP_LISTEN: `127.0.0.1:${first.httpPort}` });
    const client = issuerClient(restarted);
    try {
      assert.equal(restarted.issuer, first.issuer);
      assert.equal(restarted.keys.active().kid, kid);
      assert.equal(restarted.keys.standbyKid(), standby);
      const published = await publishedKeys(bus);
      assert.equal(published.get(kid)?.state, 'active');
      assert.equal(published.get(standby)?.state, 'standby');
      const again = await delegateThrough(sys, restarted, client);
      assert.equal(kidOf(again.accessToken), kid);
      const { payload } = await verifyThroughJwksUri(restarted, token.accessToken);
      assert.equal(payload.jti, token.jti);
    } finally {
      client.close();
      await restarted.stop();
    }
  });

  it('two replicas started together against an empty store share one ring', async () => {
    const nats = await startNats();
    const replicas = await startReplicas(sys, nats);
    const clients = replicas.map(issuerClient);
    try {
      const [a, b] = replicas as [RunningIssuer, RunningIssuer];
      assert.equal(a.keys.active().kid, b.keys.active().kid);
      assert.equal(a.keys.standbyKid(), b.keys.standbyKid());
      const kids = await Promise.all(
        replicas.map(async (issuer, i) =>
          kidOf((await delegateThrough(sys, issuer, clients[i] as pb.IssuerClient)).accessToken),
        ),
      );
      assert.deepEqual(kids, [a.keys.active().kid, a.keys.active().kid]);
      const other = await probeBus(nats.url);
      try {
        const published = await publishedKeys(other);
        assert.deepEqual(kidsIn(published, 'active'), [a.keys.active().kid]);
        assert.deepEqual(
          kidsIn(published, 'standby'),
          [a.keys.standbyKid()],
          'a lost race left a stray standby',
        );
      } finally {
        await other.close();
      }
    } finally {
      for (const client of clients) client.close();
      await Promise.all(replicas.map((issuer) => issuer.stop()));
      await nats.stop();
    }
  });

  it('a key switch on one replica is followed by every other replica before it signs again', async () => {
    const nats = await startNats();
    const replicas = await startReplicas(sys, nats);
    const clients = replicas.map(issuerClient);
    try {
      const [a, b] = replicas as [RunningIssuer, RunningIssuer];
      const { active } = await a.keys.activateStandby();
      for (let i = 0; i < 1500 && b.keys.active().kid !== active; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(b.keys.active().kid, active, 'replica b still signs with the retired key');
      assert.equal(b.keys.standbyKid(), a.keys.standbyKid());
      const token = await delegateThrough(sys, b, clients[1] as pb.IssuerClient);
      assert.equal(kidOf(token.accessToken), active);
    } finally {
      for (const client of clients) client.close();
      await Promise.all(replicas.map((issuer) => issuer.stop()));
      await nats.stop();
    }
  });

  it('stores private keys in aoa_signing_keys as ciphertext only', async () => {
    const stored = await bus.entries(BUCKETS.signingKeys);
    const sealed = [...stored].filter(([key]) => key.startsWith('key.'));
    assert.ok(sealed.length >= 2, 'expected at least the active and the standby key to be stored');
    const store = new SealedKeyStore(await bus.bucket(BUCKETS.signingKeys), Buffer.from(kek, 'hex'));
    const opened = await store.load();
    assert.ok(opened, 'the sealed ring does not open with its own key-encryption key');
    assert.equal(opened.keys.size, 2);
    for (const [key, text] of sealed) {
      assert.doesNotMatch(text, /"d"\s*:/, `${key} holds a plaintext private JWK`);
      const record = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(record).sort(), ['alg', 'kid', 'sealed']);
      assert.equal(key, `key.${record.kid}`);
    }
    for (const [kid, signingKey] of opened.keys) {
      const { d } = signingKey.privateKey.export({ format: 'jwk' });
      assert.ok(d);
      const raw = stored.get(`key.${kid}`) ?? '';
      const ciphertext = Buffer.from((JSON.parse(raw) as { sealed: string }).sealed, 'base64url');
      assert.ok(!raw.includes(d), `${kid}: private scalar stored in the clear`);
      assert.ok(
        !ciphertext.includes(Buffer.from(d, 'base64url')),
        `${kid}: private scalar in the sealed bytes`,
      );
      assert.ok(!ciphertext.includes(Buffer.from(d)), `${kid}: private JWK in the sealed bytes`);
    }
    for (const text of (await bus.entries(BUCKETS.keys)).values()) {
      assert.doesNotMatch(text, /"d"\s*:/, 'aoa_keys holds private key material');
    }
  });

  it('refuses to start with a wrong or malformed key-encryption key, naming the problem and no key material', async () => {
    const stored = [...(await bus.entries(BUCKETS.signingKeys)).values()].join('\n');
    const secrets = [kek, wrongKek, ...Array.from(stored.matchAll(/"sealed":"([^"]+)"/g), (m) => m[1] ?? '')];
    assert.ok(secrets.length > 2);
    for (const [file, message] of [
      [wrongKekFile, /cannot be opened with this key-encryption key/],
      [shortKekFile, /AOA_KEK_FILE: must hold 32 bytes/],
    ] as const) {
      await assert.rejects(sys.startIssuer({ AOA_KEK_FILE: file }), (error: Error) => {
        assert.match(error.message, message);
        const shown = `${error.message}\n${error.stack ?? ''}`;
        for (const secret of secrets) assert.ok(!shown.includes(secret), 'the error shows key material');
        assert.doesNotMatch(shown, /"d"\s*:|PRIVATE KEY/);
        return true;
      });
    }
  });

  it('moves an existing ring to ES256 at its next rotations, never signing with an unpublished key', async () => {
    const issuer = await sys.startIssuer({ AOA_ISSUER_SIGNING_ALG: 'ES256' });
    const client = issuerClient(issuer);
    try {
      assert.equal(issuer.keys.active().alg, 'EdDSA', 'a restart with a new algorithm replaced the ring');
      const before = await delegateThrough(sys, issuer, client);
      assert.equal(decodeProtectedHeader(before.accessToken).alg, 'EdDSA');

      const first = await issuer.keys.activateStandby();
      assert.equal(issuer.keys.active().alg, 'EdDSA', 'the published EdDSA standby signs first');
      assert.equal((await publishedKeys(bus)).get(first.standby)?.alg, 'ES256');
      const second = await issuer.keys.activateStandby();
      assert.equal(second.active, first.standby);

      const after = await delegateThrough(sys, issuer, client);
      const header = decodeProtectedHeader(after.accessToken);
      assert.deepEqual([header.alg, header.kid], ['ES256', first.standby]);
      for (const token of [before, after]) {
        const { payload } = await verifyThroughJwksUri(issuer, token.accessToken);
        assert.equal(payload.jti, token.jti);
      }
    } finally {
      client.close();
      await issuer.stop();
    }
  });
});

describe('ES256 signing keys (AOA_ISSUER_SIGNING_ALG=ES256)', () => {
  let sys: TestSystem;
  let bus: BusProbe;
  let nc: NatsConnection;
  before(async () => {
    sys = await startSystem({ AOA_ISSUER_SIGNING_ALG: 'ES256' });
    bus = await probeBus(sys.nats.url);
    nc = await connect({ servers: sys.nats.url });
  });
  after(async () => {
    await nc?.close();
    await bus?.close();
    await sys?.stop();
  });

  it('publishes P-256 keys and signs with them; a JWKS client and the SDK verifier both accept the token', async () => {
    const published = [...(await publishedKeys(bus)).values()];
    assert.equal(published.length, 2);
    for (const record of published) {
      assert.equal(record.alg, 'ES256');
      assert.deepEqual([record.jwk.kty, record.jwk.crv, record.jwk.alg], ['EC', 'P-256', 'ES256']);
      assert.equal('d' in record.jwk, false, 'a published key carries private material');
    }
    const issued = await delegateThrough(sys, sys.issuer, sys.client);
    assert.equal(decodeProtectedHeader(issued.accessToken).alg, 'ES256');
    const { payload } = await verifyThroughJwksUri(sys.issuer, issued.accessToken);
    assert.equal(payload.jti, issued.jti);

    const resource = 'https://metrics.internal/series';
    const verifier = createVerifier({
      issuer: sys.issuer.issuer,
      audience: 'https://metrics.internal',
      nats: nc,
    });
    try {
      await verifier.whenReady();
      const verified = await verifier.verify({
        authorization: `DPoP ${issued.accessToken}`,
        dpop: await dpopProof(holder, 'GET', resource, issued.accessToken),
        method: 'GET',
        url: resource,
      });
      assert.equal(verified.jti, issued.jti);
    } finally {
      verifier.close();
    }
  });

  it('refuses to start on an algorithm it does not sign with, naming the variable', async () => {
    await assert.rejects(
      async () => sys.startIssuer({ AOA_ISSUER_SIGNING_ALG: 'RS256' }),
      /AOA_ISSUER_SIGNING_ALG: Invalid option: expected one of "EdDSA"\|"ES256"/,
    );
  });
});
