import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  type AgentRecord,
  type AuditEnvelope,
  AuditUnavailable,
  createLogger,
  type GrantRecord,
} from '@aoa/core';
import { parsePolicy, policyGrantId } from '@aoa/policy';
import { RotatorMetrics } from '../metrics.js';
import type { GrantStore } from './grant-store.js';
import { PolicyReconciler } from './policy-reconciler.js';

const clientKey = JSON.stringify(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }));
const policyWith = (...grants: Array<{ name: string; ttl: string }>) =>
  parsePolicy(
    `version: 1
idps: [{ namespace: corp, issuer: "https://idp.example.com", audience: aoa }]
clients: [{ id: argocd, jwks: [${clientKey}] }]
roles: [{ name: owners, members: { subjects: ["idp:corp:owner"] } }]
apps: [{ name: dashboards, environments: [prod], audiences: [a] }]
rules:
  - { name: owners-dashboards, role: owners, children: [dashboards], environments: [prod],
      scopes: { prod: [read] }, max_ttl: 15m }
grants: [${grants
      .map(
        (g) => `{ name: ${g.name}, sub: "idp:corp:owner", parent_client: argocd, app: dashboards,
        env: prod, scopes: [read], token_ttl: ${g.ttl}, expires_in: none }`,
      )
      .join(', ')}]
`,
    'policy.yaml',
  );

/** An in-memory `aoa_grants` with the store's compare-and-set semantics. */
class FakeStore {
  readonly grants = new Map<string, { record: GrantRecord; revision: number }>();
  private revision = 0;
  async grant(id: string) {
    return this.grants.get(id);
  }
  async createGrant(record: GrantRecord) {
    if (this.grants.has(record.id)) return false;
    this.grants.set(record.id, { record, revision: ++this.revision });
    return true;
  }
  async updateGrant(record: GrantRecord, revision: number) {
    assert.equal(this.grants.get(record.id)?.revision, revision);
    this.grants.set(record.id, { record, revision: ++this.revision });
  }
  listGrants() {
    return [...this.grants.values()].map((g) => g.record);
  }
  agents(): AgentRecord[] {
    return [];
  }
  async deleteGrant(id: string) {
    this.grants.delete(id);
  }
}

const setup = () => {
  const store = new FakeStore();
  const events: AuditEnvelope[] = [];
  const audit = {
    down: false,
    envelope: (type: string, subject: string, data: Record<string, unknown>): AuditEnvelope => ({
      id: 'random',
      type,
      time: '',
      source: 'test',
      subject,
      data,
    }),
    publishEnvelope: async (event: AuditEnvelope) => {
      if (audit.down) throw new AuditUnavailable('audit log unavailable');
      events.push(event);
    },
  };
  const reconciler = new PolicyReconciler({
    store: store as unknown as GrantStore,
    audit,
    clock: { nowMs: () => 1_000_000 },
    log: createLogger({
      service: 'test',
      destination: new Writable({ write: (_chunk, _enc, done) => done() }),
    }),
    metrics: new RotatorMetrics(false),
    rotateNow: async () => undefined,
    retryMs: 20,
  });
  return { store, events, audit, reconciler };
};

describe('PolicyReconciler', () => {
  it('creates, updates and deletes policy grants, auditing each change before it is written', async () => {
    const { store, events, reconciler } = setup();
    await reconciler.reconcile(policyWith({ name: 'one', ttl: '1m' }, { name: 'two', ttl: '1m' }));
    await reconciler.reconcile(policyWith({ name: 'one', ttl: '2m' }));
    assert.deepEqual(
      events.map((e) => [e.type, e.subject]),
      [
        ['grant.created', policyGrantId('one')],
        ['grant.created', policyGrantId('two')],
        ['grant.updated', policyGrantId('one')],
        ['grant.deleted', policyGrantId('two')],
      ],
    );
    assert.equal(store.grants.get(policyGrantId('one'))?.record.token_ttl_seconds, 120);
    assert.equal(store.grants.has(policyGrantId('two')), false);
    // Replicas derive the same event id for the same change, so the stream keeps one.
    assert.ok(events.every((e) => /^[0-9a-f]{32}$/.test(e.id)));
    await reconciler.stop();
  });

  it('writes nothing while the audit stream refuses, and retries until it accepts', async () => {
    const { store, events, audit, reconciler } = setup();
    audit.down = true;
    await reconciler.reconcile(policyWith({ name: 'one', ttl: '1m' }));
    assert.equal(store.grants.size, 0);
    audit.down = false;
    const deadline = Date.now() + 5000;
    while (store.grants.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      events.map((e) => e.type),
      ['grant.created'],
    );
    await reconciler.stop();
  });

  it('leaves a revoked grant revoked, and keeps its tombstone once the policy drops it', async () => {
    const { store, reconciler } = setup();
    await reconciler.reconcile(policyWith({ name: 'one', ttl: '1m' }));
    const id = policyGrantId('one');
    const stored = store.grants.get(id);
    assert.ok(stored);
    await store.updateGrant({ ...stored.record, state: 'revoked' }, stored.revision);
    await reconciler.reconcile(policyWith({ name: 'one', ttl: '3m' }));
    assert.equal(store.grants.get(id)?.record.state, 'revoked');
    assert.equal(store.grants.get(id)?.record.token_ttl_seconds, 180);
    await reconciler.reconcile(policyWith());
    assert.equal(store.grants.get(id)?.record.state, 'revoked');
    await reconciler.stop();
  });
});
