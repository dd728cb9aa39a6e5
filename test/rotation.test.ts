import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, STREAMS } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import { type Agent, type AgentCredential, createAgent, generateAgentKeys } from '@aoa/sdk';
import { status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { compactDecrypt, importJWK } from 'jose';
import { clientAssertion } from './support/oauth.js';
import {
  type AgentKeys,
  asAdmin,
  callRotator,
  createGrantAsAdmin,
  enrollAgent,
  joinTokenAsAdmin,
  startRotator,
} from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const PLAINTEXT_JWT =
  /(?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?![A-Za-z0-9_.-])/;

const grpcError = (code: number, message: RegExp) => (e: unknown) =>
  (e as { code?: number }).code === code && message.test((e as { details?: string }).details ?? '');

const waitFor = async <T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
) => {
  // A deadline for eventual success, never a latency assertion: a loaded CI machine can delay a tick
  // by seconds. Delivery latency is measured by the benchmark, not here.
  const deadline = Date.now() + Math.max(timeoutMs, 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('standing grants: enrolment, rotation and encrypted delivery', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let nc: NatsConnection;
  const bus: Array<{ subject: string; data: string; at: number }> = [];
  const agents: Agent[] = [];
  const received: string[] = [];

  const admin = () => asAdmin(sys);
  const call = <Req, Res>(
    method: (typeof rot.client)[keyof pb.RotatorClient] & unknown,
    request: Req,
    md: Record<string, string>,
  ) => callRotator<Req, Res>(rot.client, method as never, request, md);
  const createGrant = (overrides: Partial<pb.CreateGrantRequest> = {}) =>
    createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 3, ...overrides });
  const joinToken = (grantId: string) => joinTokenAsAdmin(sys, rot.client, grantId);
  const enroll = (joinTokenValue: string, agentId: string, keys: AgentKeys) =>
    enrollAgent(rot.client, joinTokenValue, agentId, keys);
  const startAgent = async (agentId: string, keys: AgentKeys) => {
    const agent = await createAgent({
      nats: nc,
      env: 'prod',
      app: 'dashboards',
      agentId,
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    agent.on('rotated', (c) => received.push(c.token));
    agents.push(agent);
    return agent;
  };
  const mint = async (grantId: string) =>
    JSON.parse(
      (
        await nc.request(`aoa.issuer.mint`, JSON.stringify({ grant_id: grantId }), { timeout: 3000 })
      ).string(),
    ) as {
      deliveries?: Array<{ agent: string; jwe: string }>;
      error?: { code: string; message: string };
    };

  before(async () => {
    sys = await startSystem();
    rot = await startRotator(sys);
    nc = await connect({ servers: sys.nats.url });
    nc.subscribe('>', {
      callback: (_e, msg) => {
        bus.push({ subject: msg.subject, data: msg.string(), at: Date.now() });
      },
    });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await nc?.drain();
    await rot?.stop();
    await sys?.stop();
  });

  it('delivers a credential to an enrolled agent and rotates it at half its TTL', async () => {
    const grant = await createGrant();
    assert.equal(grant.state, 'active');
    const keys = await generateAgentKeys();
    const enrolled = await enroll(await joinToken(grant.id), 'web-1', keys);
    assert.equal(enrolled.dpopJkt, keys.dpopJkt);
    assert.equal(enrolled.subject, 'aoa.creds.prod.dashboards.web-1');
    const agent = await startAgent('web-1', keys);
    const rotations: AgentCredential[] = [];
    agent.on('rotated', (c) => rotations.push(c));
    await waitFor('the first credential', () => rotations[0], 1000);
    const first = agent.credential();
    assert.equal(first.claims.sub, 'idp:corp:grant-owner');
    assert.equal(first.claims.act.sub, 'app:dashboards');
    assert.equal(first.claims.client_id, 'client:ops');
    assert.equal(first.claims.aoa_grant, grant.id);
    assert.equal(first.claims.cnf?.jkt, keys.dpopJkt);
    assert.ok(first.claims.exp <= grant.expiresAt);
    assert.ok(first.claims.exp - first.claims.iat <= 3);

    // Continuously valid: sampled every 50 ms across at least two further rotations.
    const deadline = Date.now() + 8000;
    while (rotations.length < 3 && Date.now() < deadline) {
      assert.doesNotThrow(() => agent.token());
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(rotations.length >= 3, `only ${rotations.length} credentials arrived`);
    assert.equal(new Set(rotations.map((c) => c.jti)).size, rotations.length);
    for (let i = 1; i < rotations.length; i++) {
      assert.ok((rotations[i]?.exp ?? 0) > (rotations[i - 1]?.exp ?? 0));
    }
    assert.match(await agent.dpopProof('GET', 'https://metrics.internal/x'), /^eyJ/);
  });

  it('refuses a used, forged or unknown join token', async () => {
    const grant = await createGrant();
    const token = await joinToken(grant.id);
    const keys = await generateAgentKeys();
    await enroll(token, 'once', keys);
    await assert.rejects(
      enroll(token, 'twice', keys),
      grpcError(status.UNAUTHENTICATED, /join token: already used/),
    );
    await assert.rejects(
      enroll('aoajt_forged', 'x', keys),
      grpcError(status.UNAUTHENTICATED, /join token: malformed/),
    );
    await assert.rejects(
      enroll(`aoajt_${'A'.repeat(43)}`, 'x', keys),
      grpcError(status.UNAUTHENTICATED, /join token: unknown/),
    );
  });

  it('refuses keys that are private, of the wrong kind, or one key for both purposes, without burning the token', async () => {
    const grant = await createGrant();
    const token = await joinToken(grant.id);
    const keys = await generateAgentKeys();
    const send = (encryptionJwk: unknown, dpopJwk: unknown) =>
      call<pb.EnrollRequest, pb.EnrollResponse>(
        rot.client.enroll,
        pb.EnrollRequest.fromPartial({
          joinToken: token,
          agentId: 'keys',
          encryptionJwk: JSON.stringify(encryptionJwk),
          dpopJwk: JSON.stringify(dpopJwk),
        }),
        {},
      );
    await assert.rejects(
      send(keys.private.encryption, keys.public.dpop),
      grpcError(status.INVALID_ARGUMENT, /private key part/),
    );
    await assert.rejects(
      send(keys.public.dpop, keys.public.dpop),
      grpcError(status.INVALID_ARGUMENT, /different keys/),
    );
    await assert.rejects(
      send({ kty: 'oct', k: 'AAAA' }, keys.public.dpop),
      grpcError(status.INVALID_ARGUMENT, /encryption_jwk/),
    );
    await send(keys.public.encryption, keys.public.dpop);
  });

  it('lets no other agent read or accept another agent’s delivery', async () => {
    const grant = await createGrant();
    const ownerKeys = await generateAgentKeys();
    const otherKeys = await generateAgentKeys();
    await enroll(await joinToken(grant.id), 'owner', ownerKeys);
    await enroll(await joinToken(grant.id), 'other', otherKeys);
    const owner = await startAgent('owner', ownerKeys);
    await waitFor('the owner credential', () => tryCredential(owner), 2000);
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(STREAMS.creds, {
      last_by_subj: 'aoa.creds.prod.dashboards.owner',
    });
    const delivery = JSON.parse(new TextDecoder().decode(stored?.data)) as { jwe: string };
    await assert.rejects(
      compactDecrypt(delivery.jwe, await importJWK(otherKeys.private.encryption, 'ECDH-ES+A256KW')),
    );
    // An impostor reading the owner's subject with its own keys accepts nothing.
    const impostor = await startAgent('owner', otherKeys);
    const rejected = await waitFor(
      'a refused delivery',
      () =>
        new Promise<string | undefined>((resolve) => {
          impostor.once('rejected', (r) => resolve(r.reason));
          setTimeout(() => resolve(undefined), 100);
        }),
      3000,
    );
    assert.match(rejected, /cannot decrypt/);
    assert.throws(() => impostor.token(), /no valid credential/);
  });

  it('never signs a re-mint with the key an emergency rotation retires (not_kid)', async () => {
    const grant = await createGrant();
    const keys = await generateAgentKeys();
    await enroll(await joinToken(grant.id), 'not-kid', keys);
    const active = sys.issuer.keys.active().kid;
    const ask = async (notKid: unknown) =>
      JSON.parse(
        (
          await nc.request('aoa.issuer.mint', JSON.stringify({ grant_id: grant.id, not_kid: notKid }), {
            timeout: 3000,
          })
        ).string(),
      ) as { deliveries?: Array<{ jwe: string }>; error?: { code: string; message: string } };
    // This replica has caught up with the ring and still signs with that key: it refuses, to be retried.
    assert.deepEqual((await ask(active)).error, {
      code: 'unavailable',
      message: 'this replica still signs with the key being retired; retry',
    });
    assert.equal((await ask('')).error?.code, 'invalid_argument');
    assert.equal((await ask(42)).error?.code, 'invalid_argument');
    assert.equal((await ask('some-other-kid')).deliveries?.length, 1);
  });

  it('never mints for a revoked grant: a tombstone or a revocation mark', async () => {
    const grant = await createGrant();
    const keys = await generateAgentKeys();
    await enroll(await joinToken(grant.id), 'revoked', keys);
    const agent = await startAgent('revoked', keys);
    await waitFor('a credential', () => tryCredential(agent), 2000);
    const kvm = new Kvm(nc);
    const grants = await kvm.open(BUCKETS.grants);
    const entry = await grants.get(`grant.${grant.id}`);
    await grants.update(
      `grant.${grant.id}`,
      JSON.stringify({ ...entry?.json<object>(), state: 'revoked' }),
      entry?.revision ?? 0,
    );
    assert.deepEqual((await mint(grant.id)).error, {
      code: 'failed_precondition',
      message: 'grant is revoked',
    });
    await assert.rejects(
      call<pb.RotateNowRequest, pb.RotateNowResponse>(
        rot.client.rotateNow,
        { grantId: grant.id },
        await admin(),
      ),
      grpcError(status.FAILED_PRECONDITION, /revoked/),
    );
    const jsm = await jetstreamManager(nc);
    const subject = 'aoa.creds.prod.dashboards.revoked';
    const seq = (await jsm.streams.getMessage(STREAMS.creds, { last_by_subj: subject }))?.seq;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await jsm.streams.getMessage(STREAMS.creds, { last_by_subj: subject }))?.seq, seq);

    const marked = await createGrant();
    await enroll(await joinToken(marked.id), 'marked', await generateAgentKeys());
    const revocations = await kvm.open(BUCKETS.revocations);
    await revocations.put(
      `grant.${marked.id}`,
      JSON.stringify({ id: 'r1', at_ms: Date.now(), reason: 'test', kind: 'grant' }),
    );
    const refused = await waitFor(
      'the mark to reach the issuer',
      async () => (await mint(marked.id)).error,
      2000,
    );
    assert.equal(refused.code, 'failed_precondition');
    assert.match(refused.message, /^grant is revoked/);
    // The mark expires with the revocation bucket; the tombstone it leaves in aoa_grants does not.
    const tombstone = await waitFor(
      'the tombstone',
      async () => {
        const state = (await grants.get(`grant.${marked.id}`))?.json<{ state: string }>().state;
        return state === 'revoked' ? state : undefined;
      },
      2000,
    );
    assert.equal(tombstone, 'revoked');

    // Only an administrator restores it, lifting the tombstone and the mark.
    const ownerCall = {
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
    };
    await assert.rejects(
      call<pb.RestoreGrantRequest, pb.RestoreGrantResponse>(
        rot.client.restoreGrant,
        { grantId: marked.id },
        ownerCall,
      ),
      grpcError(status.PERMISSION_DENIED, /administrators only/),
    );
    const { grant: restored } = await call<pb.RestoreGrantRequest, pb.RestoreGrantResponse>(
      rot.client.restoreGrant,
      { grantId: marked.id },
      await admin(),
    );
    assert.equal(restored?.state, 'active');
    const minted = await waitFor(
      'a mint after the restore',
      async () => (await mint(marked.id)).deliveries,
      2000,
    );
    assert.equal(minted.length, 1);
  });

  it('refuses a grant policy does not allow, and a parent that presents no subject token', async () => {
    await assert.rejects(
      createGrant({ scopes: ['write:dashboards'] }),
      grpcError(status.PERMISSION_DENIED, /does not allow scope/),
    );
    await assert.rejects(
      createGrant({ tokenTtlSeconds: 3600 }),
      grpcError(status.PERMISSION_DENIED, /exceeds rule grant-owners-dashboards max_ttl/),
    );
    await assert.rejects(
      createGrant({ environment: 'staging' }),
      grpcError(status.PERMISSION_DENIED, /no rule/),
    );
    await assert.rejects(createGrant({ child: 'Bad.App' }), grpcError(status.INVALID_ARGUMENT, /child/));
    await assert.rejects(
      call<pb.CreateGrantRequest, pb.CreateGrantResponse>(
        rot.client.createGrant,
        pb.CreateGrantRequest.fromPartial({
          sub: 'idp:corp:grant-owner',
          child: 'dashboards',
          environment: 'prod',
          scopes: ['read:metrics'],
          tokenTtlSeconds: 3,
        }),
        { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
      ),
      grpcError(status.UNAUTHENTICATED, /subject-token required/),
    );
    await assert.rejects(
      call<pb.CreateGrantRequest, pb.CreateGrantResponse>(
        rot.client.createGrant,
        pb.CreateGrantRequest.fromPartial({}),
        {},
      ),
      grpcError(status.UNAUTHENTICATED, /caller proof required/),
    );
  });

  it("lets a grant's parent client create join tokens and list its grants, and administrators delete them", async () => {
    const argocd = async () => ({
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
    });
    const ci = async () => ({
      'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer),
    });
    const grant = await createGrant({ parentClient: 'argocd' });
    assert.equal(grant.parentClient, 'argocd');
    const joined = await call<pb.CreateJoinTokenRequest, pb.CreateJoinTokenResponse>(
      rot.client.createJoinToken,
      { grantId: grant.id, ttlSeconds: 60 },
      await argocd(),
    );
    assert.match(joined.joinToken, /^aoajt_/);
    await assert.rejects(
      call(rot.client.createJoinToken, { grantId: grant.id, ttlSeconds: 60 }, await ci()),
      grpcError(status.PERMISSION_DENIED, /parent client/),
    );
    await enroll(joined.joinToken, 'listed', await generateAgentKeys());
    const own = await call<pb.ListGrantsRequest, pb.ListGrantsResponse>(
      rot.client.listGrants,
      { environment: '', child: '' },
      await argocd(),
    );
    assert.deepEqual(
      own.grants.map((g) => [g.id, g.agents]),
      [[grant.id, ['listed']]],
    );
    const all = await call<pb.ListGrantsRequest, pb.ListGrantsResponse>(
      rot.client.listGrants,
      { environment: 'prod', child: 'dashboards' },
      await admin(),
    );
    assert.ok(all.grants.length > 1);
    await assert.rejects(
      call(rot.client.deleteGrant, { grantId: grant.id }, await argocd()),
      grpcError(status.PERMISSION_DENIED, /administrators only/),
    );
    await call(rot.client.deleteGrant, { grantId: grant.id }, await admin());
    assert.deepEqual((await mint(grant.id)).error, { code: 'not_found', message: 'grant not found' });
    await assert.rejects(
      call(rot.client.rotateNow, { grantId: grant.id }, await admin()),
      grpcError(status.NOT_FOUND, /grant not found/),
    );
  });

  it('gives three agents of one app their own credentials, and a late starter the current one at once', async () => {
    const grant = await createGrant({ tokenTtlSeconds: 60 });
    const keys = await Promise.all([1, 2, 3].map(() => generateAgentKeys()));
    for (const [i, k] of keys.entries()) await enroll(await joinToken(grant.id), `replica-${i}`, k);
    // All three enrolled and minted before any agent starts: each reads the last delivery at once.
    await new Promise((r) => setTimeout(r, 300));
    const replicas = await Promise.all(keys.map((k, i) => startAgent(`replica-${i}`, k)));
    const credentials = await Promise.all(
      replicas.map((a) => waitFor('a credential', () => tryCredential(a), 1000)),
    );
    assert.equal(new Set(credentials.map((c) => c.jti)).size, 3);
    assert.deepEqual(
      credentials.map((c) => c.claims.cnf?.jkt),
      keys.map((k) => k.dpopJkt),
    );
  });

  it('refuses a tampered, replayed or malformed delivery and keeps serving the credential it holds', async () => {
    const grant = await createGrant({ tokenTtlSeconds: 60 });
    const keys = await generateAgentKeys();
    await enroll(await joinToken(grant.id), 'victim', keys);
    const victim = await startAgent('victim', keys);
    const held = await waitFor('a credential', () => tryCredential(victim), 2000);
    const subject = 'aoa.creds.prod.dashboards.victim';
    const original = bus.find((m) => m.subject === subject)?.data ?? '';
    const reasons: string[] = [];
    victim.on('rejected', (r) => reasons.push(r.reason));
    const envelope = JSON.parse(original) as { jwe: string };
    const parts = envelope.jwe.split('.');
    parts[3] = `${parts[3]?.[0] === 'A' ? 'B' : 'A'}${parts[3]?.slice(1)}`;
    // The stream keeps one message per subject: publish each only after the previous one was judged.
    for (const [i, data] of [
      JSON.stringify({ ...envelope, jwe: parts.join('.') }),
      original,
      'not json',
      JSON.stringify({ agent: 'victim' }),
    ].entries()) {
      nc.publish(subject, data);
      await waitFor(`refusal ${i + 1}`, () => (reasons.length > i ? true : undefined), 2000);
    }
    assert.deepEqual(reasons, [
      'delivery: cannot decrypt (not encrypted to this agent, or tampered with)',
      'delivery: not newer than the credential held',
      'delivery: not JSON',
      'delivery: not the schema',
    ]);
    assert.ok(victim.credential().exp >= held.exp);
  });

  it('keeps serving its credential while nats-server restarts, then receives the next one', async () => {
    const grant = await createGrant({ tokenTtlSeconds: 6 });
    const keys = await generateAgentKeys();
    await enroll(await joinToken(grant.id), 'restart', keys);
    const agent = await startAgent('restart', keys);
    await waitFor('a credential', () => tryCredential(agent), 2000);
    // A rotation may land just before the server stops: what matters is that the agent serves a
    // valid credential while NATS is away, and a newer one after it returns.
    let held: AgentCredential | undefined;
    await sys.nats.restart({
      whileDown: async () => {
        await new Promise((r) => setTimeout(r, 300));
        held = tryCredential(agent);
        assert.ok(held, 'no valid credential while nats-server is down');
        assert.equal(agent.token(), held.token);
      },
    });
    const before = held as AgentCredential;
    const next = await waitFor(
      'a credential after the restart',
      () => {
        const now = tryCredential(agent);
        return now && now.jti !== before.jti ? now : undefined;
      },
      8000,
    );
    assert.ok(next.exp >= before.exp);
  });

  it('ticks each grant once across replicas, and a second replica takes over a stopped one', async () => {
    await rot.stop();
    const a = await startRotator(sys);
    const b = await startRotator(sys);
    rot = a;
    try {
      const grant = await createGrant();
      const keys = await generateAgentKeys();
      await enroll(await joinToken(grant.id), 'failover', keys);
      const agent = await startAgent('failover', keys);
      await waitFor('a credential', () => tryCredential(agent), 2000);
      const subject = 'aoa.creds.prod.dashboards.failover';
      // Past the enrolment's own mint, ticks come every 1.35 to 1.65 s (3 s TTL): none doubled. A
      // doubled tick shows as two deliveries milliseconds apart; 1 s leaves room for a slow machine.
      await new Promise((r) => setTimeout(r, 1000));
      const since = bus.length;
      // The spy also sees each message again as JetStream delivers it to the agent: count by jti.
      const firstSeen = new Map<string, number>();
      const ticks = await waitFor(
        'three deliveries',
        () => {
          for (const m of bus.slice(since)) {
            if (m.subject !== subject) continue;
            const jti = (JSON.parse(m.data) as { jti: string }).jti;
            if (!firstSeen.has(jti)) firstSeen.set(jti, m.at);
          }
          return firstSeen.size >= 3 ? [...firstSeen.values()] : undefined;
        },
        15_000,
      );
      for (let i = 1; i < ticks.length; i++) {
        const gap = (ticks[i] ?? 0) - (ticks[i - 1] ?? 0);
        assert.ok(gap >= 1000, `two deliveries ${gap} ms apart`);
      }
      const grants = await new Kvm(nc).open(BUCKETS.grants);
      const holder = (await grants.get(`lease.${grant.id}`))?.json<{ holder: string }>().holder;
      const [stopped, survivor] = holder === a.rotator.holder ? [a, b] : [b, a];
      assert.equal(holder, stopped.rotator.holder);
      await stopped.stop();
      rot = survivor;
      const before = tryCredential(agent)?.jti;
      // The lease (2 s) runs out, the survivor takes the grant, and rotation carries on.
      await waitFor(
        'a rotation by the survivor',
        () => {
          const now = tryCredential(agent);
          return now && now.jti !== before ? now : undefined;
        },
        5000,
      );
      const newHolder = (await grants.get(`lease.${grant.id}`))?.json<{ holder: string }>().holder;
      assert.equal(newHolder, survivor.rotator.holder);
      assert.doesNotThrow(() => agent.token());
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('never writes a token or a join token to the logs', () => {
    const logs = sys.logs.text();
    assert.ok(logs.includes('grant rotated'));
    assert.doesNotMatch(logs, /aoajt_/);
    for (const token of received) assert.ok(!logs.includes(token));
    assert.doesNotMatch(logs, PLAINTEXT_JWT);
  });

  it('never publishes a plaintext token on the bus', () => {
    assert.ok(received.length >= 3);
    const creds = bus.filter((m) => m.subject.startsWith('aoa.creds.'));
    assert.ok(creds.length >= 3);
    for (const message of bus) {
      assert.doesNotMatch(message.data, PLAINTEXT_JWT, `plaintext JWT on ${message.subject}`);
      for (const token of received)
        assert.ok(!message.data.includes(token), `a delivered token on ${message.subject}`);
    }
  });
});

function tryCredential(agent: Agent): AgentCredential | undefined {
  try {
    return agent.credential();
  } catch {
    return undefined;
  }
}
