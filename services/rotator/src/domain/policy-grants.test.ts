import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AgentRecord } from '@aoa/core';
import { type PolicyGrantAgent, parsePolicy, policyGrantId } from '@aoa/policy';
import { assertGrantId } from './grant.js';
import { grantDiffers, planAgents, policyGrantRecord } from './policy-grants.js';

const clientKey = JSON.stringify(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }));
const policyWith = (grant: string) =>
  parsePolicy(
    `version: 1
idps: [{ namespace: corp, issuer: "https://idp.example.com", audience: aoa }]
clients: [{ id: argocd, jwks: [${clientKey}] }]
roles: [{ name: owners, members: { subjects: ["idp:corp:owner"] } }]
apps: [{ name: dashboards, environments: [prod], audiences: [b, a] }]
rules:
  - { name: owners-dashboards, role: owners, children: [dashboards], environments: [prod],
      scopes: { prod: [read, write] }, max_ttl: 15m }
grants:
  - { name: standing, sub: "idp:corp:owner", parent_client: argocd, app: dashboards, env: prod,
      scopes: [write, read], token_ttl: 1m, ${grant} }
`,
    'policy.yaml',
  );

const agent = (id: string, fromPolicy: boolean, x = 'x'): AgentRecord => ({
  grant: 'g',
  agent: id,
  enc_jwk: { kty: 'EC', crv: 'P-256', x, y: 'y' },
  dpop_jwk: { kty: 'EC', crv: 'P-256', x: 'dx', y: 'dy' },
  dpop_jkt: 'jkt',
  enrolled_at_ms: 1,
  ...(fromPolicy ? { from_policy: true } : {}),
});
const wanted = (id: string, x = 'x'): PolicyGrantAgent => ({
  id,
  encryptionJwk: { kty: 'EC', crv: 'P-256', x, y: 'y' },
  dpopJwk: { kty: 'EC', crv: 'P-256', x: 'dx', y: 'dy' },
});

describe('policy grant records', () => {
  it('derives one valid grant id per name, the same on every replica', () => {
    assert.equal(policyGrantId('standing'), policyGrantId('standing'));
    assert.notEqual(policyGrantId('standing'), policyGrantId('standing-2'));
    assert.equal(assertGrantId(policyGrantId('a')), policyGrantId('a'));
  });

  it('builds the record policy allows, counting the expiry from creation', () => {
    const policy = policyWith('expires_in: 1h');
    const [grant] = policy.grants;
    assert.ok(grant);
    const created = policyGrantRecord(policy, grant, undefined, 10_000_500);
    assert.deepEqual(
      { ...created },
      {
        id: policyGrantId('standing'),
        sub: 'idp:corp:owner',
        parent_client: 'argocd',
        app: 'dashboards',
        env: 'prod',
        scopes: ['read', 'write'],
        audience: ['a', 'b'],
        token_ttl_seconds: 60,
        expires_at: 10_000 + 3600,
        state: 'active',
        created_at_ms: 10_000_500,
        policy_grant: 'standing',
      },
    );
    const later = policyGrantRecord(policy, grant, created, 99_000_000);
    assert.equal(later.expires_at, created.expires_at);
    assert.equal(grantDiffers(created, later), false);
    const forever = policyWith('expires_in: none');
    assert.equal(policyGrantRecord(forever, forever.grants[0] ?? grant, created, 1).expires_at, 0);
  });

  it('keeps a revoked grant revoked, with its restore time, while updating what policy owns', () => {
    const policy = policyWith('expires_in: none');
    const [grant] = policy.grants;
    assert.ok(grant);
    const stored = {
      ...policyGrantRecord(policy, grant, undefined, 5000),
      state: 'revoked' as const,
      token_ttl_seconds: 30,
      restored_at_ms: 4000,
    };
    const next = policyGrantRecord(policy, grant, stored, 9000);
    assert.equal(next.state, 'revoked');
    assert.equal(next.restored_at_ms, 4000);
    assert.equal(next.token_ttl_seconds, 60);
    assert.equal(grantDiffers(stored, next), true);
  });
});

describe('planAgents', () => {
  it('enrols new and re-keyed agents, and removes only the policy agents it no longer lists', () => {
    const plan = planAgents(
      [wanted('same'), wanted('rekeyed', 'new'), wanted('new'), wanted('claimed')],
      [
        agent('same', true),
        agent('rekeyed', true),
        agent('unlisted', true),
        agent('joined', false),
        agent('claimed', false),
      ],
    );
    assert.deepEqual(
      plan.enrol.map((a) => a.id),
      ['rekeyed', 'new', 'claimed'],
    );
    assert.deepEqual(plan.remove, ['unlisted']);
  });
});
