import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, type GrantRecord, STREAMS } from '@aoa/core';
import { policyGrantId } from '@aoa/policy';
import type { rotator as pb } from '@aoa/proto';
import { type Agent, createAgent, generateAgentKeys } from '@aoa/sdk';
import { status } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { clientAssertion } from './support/oauth.js';
import { callRotator, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem, testPolicy } from './support/system.js';

type Keys = Awaited<ReturnType<typeof generateAgentKeys>>;

/** One `grants:` entry for the test policy; the rule grant-owners-dashboards allows it. */
const grantYaml = (name: string, options: { ttl?: string; agents?: Array<[string, Keys]> } = {}) => {
  const agents = (options.agents ?? []).map(
    ([id, keys]) => `
      - id: ${id}
        encryption_jwk: ${JSON.stringify(keys.public.encryption)}
        dpop_jwk: ${JSON.stringify(keys.public.dpop)}`,
  );
  return `
  - name: ${name}
    sub: idp:corp:grant-owner
    parent_client: argocd
    app: dashboards
    env: prod
    scopes: [read:metrics]
    token_ttl: ${options.ttl ?? '3s'}
    expires_in: none${agents.length > 0 ? `\n    agents:${agents.join('')}` : ''}`;
};

const waitFor = async <T>(what: string, probe: () => T | undefined | Promise<T | undefined>) => {
  // Eventual success within a generous deadline: a loaded CI machine can delay a reload by seconds.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('standing grants declared in policy', () => {
  let sys: TestSystem;
  let nc: NatsConnection;
  let grants: KV;
  const agents: Agent[] = [];
  const rotators: Array<Awaited<ReturnType<typeof startRotator>>> = [];

  const writePolicy = (...entries: string[]) =>
    writeFile(
      sys.policyPath,
      `${testPolicy(sys.idp.issuer, sys.keys)}${entries.length > 0 ? `grants:${entries.join('')}\n` : ''}`,
    );
  const record = async (name: string) => {
    const entry = await grants.get(`grant.${policyGrantId(name)}`);
    return entry?.operation === 'PUT' ? entry.json<GrantRecord>() : undefined;
  };
  const recordWhere = (name: string, test: (r: GrantRecord | undefined) => boolean) =>
    waitFor(`grant ${name}`, async () => {
      const found = await record(name);
      return test(found) ? { found } : undefined;
    }).then(({ found }) => found);
  const admin = async () => ({
    'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
  });
  const start = async () => {
    const rot = await startRotator(sys);
    rotators.push(rot);
    return rot;
  };
  const stopRotator = async (rot: Awaited<ReturnType<typeof startRotator>>) => {
    rotators.splice(rotators.indexOf(rot), 1);
    await rot.stop();
  };

  before(async () => {
    sys = await startSystem();
    nc = await connect({ servers: sys.nats.url });
    grants = await new Kvm(nc).create(BUCKETS.grants, { history: 1, storage: 'file' });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    for (const rot of rotators.splice(0)) await rot.stop();
    await nc?.drain();
    await sys?.stop();
  });

  it('creates policy grants at start, and updates and deletes them with the policy file', async () => {
    await writePolicy(grantYaml('listed'));
    const rot = await start();
    const created = await recordWhere('listed', (r) => r !== undefined);
    assert.equal(created?.id, policyGrantId('listed'));
    assert.equal(created?.policy_grant, 'listed');
    assert.equal(created?.sub, 'idp:corp:grant-owner');
    assert.equal(created?.parent_client, 'argocd');
    assert.deepEqual(created?.audience, ['https://dashboards.internal', 'https://metrics.internal']);
    assert.equal(created?.expires_at, 0);
    const listed = await callRotator<pb.ListGrantsRequest, pb.ListGrantsResponse>(
      rot.client,
      rot.client.listGrants,
      { environment: 'prod', child: 'dashboards' },
      await admin(),
    );
    assert.deepEqual(
      listed.grants.map((g) => g.id),
      [policyGrantId('listed')],
    );
    await assert.rejects(
      callRotator(rot.client, rot.client.deleteGrant, { grantId: created?.id }, await admin()),
      (e: { code?: number; details?: string }) =>
        e.code === status.FAILED_PRECONDITION && /remove it from the policy file/.test(e.details ?? ''),
    );

    await writePolicy(grantYaml('listed', { ttl: '5s' }));
    const updated = await recordWhere('listed', (r) => r?.token_ttl_seconds === 5);
    assert.equal(updated?.created_at_ms, created?.created_at_ms);

    await writePolicy();
    await recordWhere('listed', (r) => r === undefined);
    await stopRotator(rot);
  });

  it('enrols the agents a policy grant registers, which then receive credentials', async () => {
    const keys = await generateAgentKeys();
    const other = await generateAgentKeys();
    await writePolicy(
      grantYaml('agents', {
        agents: [
          ['policy-agent', keys],
          ['dropped', other],
        ],
      }),
    );
    const rot = await start();
    const agent = await createAgent({
      nats: nc,
      env: 'prod',
      app: 'dashboards',
      agentId: 'policy-agent',
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    agents.push(agent);
    const credential = await waitFor('a credential', () => {
      try {
        return agent.credential();
      } catch {
        return undefined;
      }
    });
    assert.equal(credential.claims.aoa_grant, policyGrantId('agents'));
    assert.equal(credential.claims.sub, 'idp:corp:grant-owner');
    assert.equal(credential.claims.client_id, 'client:argocd');
    assert.equal(credential.claims.cnf?.jkt, keys.dpopJkt);

    await writePolicy(grantYaml('agents', { agents: [['policy-agent', keys]] }));
    const id = policyGrantId('agents');
    await waitFor('the unlisted agent removed', async () =>
      (await grants.get(`agent.${id}.dropped`))?.operation === 'PUT' ? undefined : true,
    );
    assert.equal((await grants.get(`agent.${id}.policy-agent`))?.operation, 'PUT');
    await writePolicy();
    await recordWhere('agents', (r) => r === undefined);
    await stopRotator(rot);
  });

  it('keeps a revoked policy grant revoked across reloads and restarts, until an administrator restores it', async () => {
    await writePolicy(grantYaml('revoked'));
    let rot = await start();
    const id = policyGrantId('revoked');
    await recordWhere('revoked', (r) => r?.state === 'active');
    const entry = await grants.get(`grant.${id}`);
    await grants.update(
      `grant.${id}`,
      JSON.stringify({ ...entry?.json<GrantRecord>(), state: 'revoked' }),
      entry?.revision ?? 0,
    );
    // A changed entry is updated, and stays revoked.
    await writePolicy(grantYaml('revoked', { ttl: '4s' }));
    const updated = await recordWhere('revoked', (r) => r?.token_ttl_seconds === 4);
    assert.equal(updated?.state, 'revoked');
    // Unlisted, the tombstone stays; listed again, it is still revoked.
    await writePolicy(grantYaml('other'));
    await recordWhere('other', (r) => r !== undefined);
    assert.equal((await record('revoked'))?.state, 'revoked');
    await writePolicy(grantYaml('revoked', { ttl: '6s' }));
    assert.equal((await recordWhere('revoked', (r) => r?.token_ttl_seconds === 6))?.state, 'revoked');
    await stopRotator(rot);
    rot = await start();
    assert.equal((await record('revoked'))?.state, 'revoked');

    const restored = await callRotator<pb.RestoreGrantRequest, pb.RestoreGrantResponse>(
      rot.client,
      rot.client.restoreGrant,
      { grantId: id },
      await admin(),
    );
    assert.equal(restored.grant?.state, 'active');
    await writePolicy();
    await recordWhere('revoked', (r) => r === undefined);
    await stopRotator(rot);
  });

  it('two rotators reconciling the same policy create one grant and one audit event', async () => {
    await writePolicy(grantYaml('raced'));
    await Promise.all([start(), start()]);
    const id = policyGrantId('raced');
    await recordWhere('raced', (r) => r !== undefined);
    const consumer = await jetstream(nc).consumers.get(STREAMS.audit);
    const events: string[] = [];
    for await (const message of await consumer.consume()) {
      const event = message.json<{ type: string; subject: string }>();
      if (event.type === 'grant.created' && event.subject === id) events.push(event.subject);
      if (message.info.pending === 0) break;
    }
    assert.deepEqual(events, [id]);
    for (const rot of rotators.splice(0)) await rot.stop();
  });
});
