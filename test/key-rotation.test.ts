import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, type PublishedKeyRecord } from '@aoa/core';
import { issuer as issuerPb } from '@aoa/proto';
import { type Agent, createAgent, createVerifier, type Verifier } from '@aoa/sdk';
import { Metadata, status } from '@grpc/grpc-js';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeProtectedHeader } from 'jose';
import { clientAssertion } from './support/oauth.js';
import { grantWithEnrolledAgent, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const AUDIENCE = 'https://metrics.internal';
const RESOURCE = 'https://metrics.internal/api';

/** Eventual success with a generous deadline; never a latency assertion. */
async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const kidOf = (token: string): string => decodeProtectedHeader(token).kid as string;

/** The kid of the credential the agent holds, or undefined while it holds none (the gap of --now). */
const heldKid = (agent: Agent): string | undefined => {
  try {
    return kidOf(agent.token());
  } catch {
    return undefined;
  }
};

/**
 * One standing grant with an agent, and a resource server's verifier sampling the agent's credential
 * all along: every sample must verify (signature, DPoP, revocation), so the credential stays valid
 * across every key switch.
 */
async function grantWithAgent(
  sys: TestSystem,
  rot: Awaited<ReturnType<typeof startRotator>>,
  nc: NatsConnection,
) {
  const { keys } = await grantWithEnrolledAgent(
    sys,
    rot.client,
    {
      audience: [AUDIENCE],
      // Rotated every ~4 s: long enough that a loaded machine never lets a credential lapse between samples.
      tokenTtlSeconds: 8,
    },
    'dash-1',
  );
  const agent = await createAgent({
    nats: nc,
    env: 'prod',
    app: 'dashboards',
    agentId: 'dash-1',
    keys: keys.private,
    issuer: sys.issuer.issuer,
  });
  const verifier = createVerifier({ issuer: sys.issuer.issuer, audience: AUDIENCE, nats: nc });
  await verifier.whenReady();
  await waitFor('a first credential', () => {
    try {
      return agent.token();
    } catch {
      return undefined;
    }
  });
  return { agent, verifier };
}

/** Samples the agent's credential through the verifier until stopped; returns every failure seen. */
function sampleContinuously(
  agent: Agent,
  verifier: Verifier,
): { stop(): Promise<string[]>; kids: Set<string> } {
  const failures: string[] = [];
  const kids = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const token = agent.token();
        kids.add(kidOf(token));
        await verifier.verify({
          authorization: `DPoP ${token}`,
          dpop: await agent.dpopProof('GET', RESOURCE),
          method: 'GET',
          url: RESOURCE,
        });
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    kids,
    stop: async () => {
      running = false;
      await loop;
      return failures;
    },
  };
}

function rotateKeys(sys: TestSystem, request: Partial<issuerPb.RotateKeysRequest>, assertion: string) {
  const md = new Metadata();
  if (assertion) md.set('client-assertion', assertion);
  return new Promise<issuerPb.RotateKeysResponse>((resolve, reject) =>
    sys.client.rotateKeys(issuerPb.RotateKeysRequest.fromPartial(request), md, (error, value) =>
      error ? reject(error) : resolve(value),
    ),
  );
}

describe('signing-key rotation: scheduled', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let nc: NatsConnection;
  let fixture: Awaited<ReturnType<typeof grantWithAgent>>;
  before(async () => {
    sys = await startSystem({ AOA_KEY_ROTATION_INTERVAL: '2s', AOA_KEY_PUBLICATION_LEAD: '1s' });
    rot = await startRotator(sys);
    nc = await connect({ servers: sys.nats.url });
    fixture = await grantWithAgent(sys, rot, nc);
  });
  after(async () => {
    await fixture?.agent.stop();
    fixture?.verifier.close();
    await nc?.close();
    await rot?.stop();
    await sys?.stop();
  });

  it('switches keys on schedule while the agent holds a valid credential throughout', async () => {
    const first = sys.issuer.keys.active().kid;
    const sampler = sampleContinuously(fixture.agent, fixture.verifier);
    const seen = new Set([first]);
    await waitFor('two scheduled key switches', () => {
      seen.add(sys.issuer.keys.active().kid);
      return seen.size >= 3 ? true : undefined;
    });
    await waitFor('a credential signed by a newer key', () =>
      heldKid(fixture.agent) !== first ? true : undefined,
    );
    await waitFor('samples of credentials signed by more than one key', () =>
      sampler.kids.size >= 2 ? true : undefined,
    );
    const failures = await sampler.stop();
    assert.deepEqual(failures, [], 'the agent held a valid credential at every sample');
    const keysKv = await new Kvm(nc).open(BUCKETS.keys);
    const record = (await keysKv.get(first))?.json<PublishedKeyRecord>();
    assert.equal(record?.state, 'retired', 'the first key stays published, retired, while its tokens live');
  });
});

describe('signing-key rotation: emergency', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let nc: NatsConnection;
  let fixture: Awaited<ReturnType<typeof grantWithAgent>>;
  const admin = () => clientAssertion('ops', sys.keys.admin, sys.issuer.issuer);
  before(async () => {
    sys = await startSystem({ AOA_KEY_ROTATION_INTERVAL: '0s', AOA_KEY_REMINT_TIMEOUT: '20s' });
    rot = await startRotator(sys);
    nc = await connect({ servers: sys.nats.url });
    fixture = await grantWithAgent(sys, rot, nc);
  });
  after(async () => {
    await fixture?.agent.stop();
    fixture?.verifier.close();
    await nc?.close();
    await rot?.stop();
    await sys?.stop();
  });

  it('refuses callers that are not administrators', async () => {
    await assert.rejects(
      rotateKeys(sys, {}, ''),
      (e: { code?: number }) => e.code === status.UNAUTHENTICATED,
    );
    const argocd = await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer);
    await assert.rejects(
      rotateKeys(sys, {}, argocd),
      (e: { code?: number }) => e.code === status.PERMISSION_DENIED,
    );
  });

  it('without --now: switches, re-mints and delivers every grant, then revokes the old kid, with no gap', async () => {
    const old = sys.issuer.keys.active().kid;
    const standby = sys.issuer.keys.standbyKid();
    const sampler = sampleContinuously(fixture.agent, fixture.verifier);
    const result = await rotateKeys(sys, { reason: 'drill' }, await admin());
    assert.equal(result.retiredKid, old);
    assert.equal(result.activeKid, standby, 'the published standby signs at once');
    assert.notEqual(result.standbyKid, standby, 'a fresh standby is already published');
    assert.equal(result.grants, 1);
    assert.equal(result.reminted, 1);
    assert.deepEqual(result.failedGrants, []);
    assert.ok(result.revocationId);
    assert.equal(
      kidOf(fixture.agent.token()),
      standby,
      'the agent already holds a credential under the new key',
    );
    await new Promise((r) => setTimeout(r, 500));
    const failures = await sampler.stop();
    assert.deepEqual(failures, [], 'the agent held a valid credential at every sample');
    const revoked = await (await new Kvm(nc).open(BUCKETS.revocations)).get(`kid.${old}`);
    assert.equal(revoked?.operation, 'PUT', 'the old kid is revoked');
  });

  it('with --now: revokes the old kid first, then re-mints', async () => {
    const old = sys.issuer.keys.active().kid;
    const result = await rotateKeys(sys, { now: true, reason: 'key leaked' }, await admin());
    assert.equal(result.retiredKid, old);
    assert.equal(result.reminted, 1);
    assert.ok(result.revocationId);
    await waitFor('a credential under the new key', () =>
      heldKid(fixture.agent) === result.activeKid ? true : undefined,
    );
    const kvm = new Kvm(nc);
    const revocation = (await (await kvm.open(BUCKETS.revocations)).get(`kid.${old}`))?.json<{
      at_ms: number;
    }>();
    const activated = (
      await (await kvm.open(BUCKETS.keys)).get(result.activeKid)
    )?.json<PublishedKeyRecord>();
    assert.ok(revocation && activated?.activated_ms);
    assert.ok(
      revocation.at_ms <= activated.activated_ms,
      'the old kid was revoked before the new key signed',
    );
  });
});

describe('signing-key rotation: emergency with no rotator answering', () => {
  let sys: TestSystem;
  let nc: NatsConnection;
  before(async () => {
    sys = await startSystem({ AOA_KEY_ROTATION_INTERVAL: '0s', AOA_KEY_REMINT_TIMEOUT: '200ms' });
    nc = await connect({ servers: sys.nats.url });
    // A rotator that takes the request and never answers.
    nc.subscribe('aoa.rotator.remint', { queue: 'rotator' });
    await nc.flush();
  });
  after(async () => {
    await nc?.close();
    await sys?.stop();
  });

  it('revokes the old kid all the same, and says the re-mint failed', async () => {
    const old = sys.issuer.keys.active().kid;
    const result = await rotateKeys(
      sys,
      { reason: 'drill' },
      await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
    );
    assert.equal(result.retiredKid, old);
    assert.match(result.remintError, /no rotator finished re-minting in time/);
    assert.ok(result.revocationId, 'a possibly compromised key never outlives a failed re-mint');
    const revoked = await (await new Kvm(nc).open(BUCKETS.revocations)).get(`kid.${old}`);
    assert.equal(revoked?.operation, 'PUT');
  });
});
