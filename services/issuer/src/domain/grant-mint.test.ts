import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AgentRecord, GrantRecord } from '@aoa/core';
import { AppError, ManualClock, type SigningKey } from '@aoa/core';
import { parsePolicy } from '@aoa/policy';
import { calculateJwkThumbprint, compactDecrypt, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { type GrantMintContext, mintForGrant } from './grant-mint.js';

const POLICY = parsePolicy(
  `version: 1
limits:
  max_token_ttl: 1h
idps:
  - namespace: corp
    issuer: https://idp.test
    audience: https://aoa.test
clients: []
roles:
  - name: owners
    members:
      subjects: ["idp:corp:owner"]
apps:
  - name: dashboards
    environments: [prod]
    audiences: ["https://metrics.internal"]
rules:
  - name: owners-dashboards
    role: owners
    children: [dashboards]
    environments: [prod]
    scopes:
      prod: ["read:metrics"]
    max_ttl: 15m
`,
  'grant-mint.policy.yaml',
);

const NOW_MS = 1_800_000_000_000;
const key: SigningKey = { kid: 'k1', alg: 'EdDSA', privateKey: generateKeyPairSync('ed25519').privateKey };

async function agentKeys(name: string) {
  const enc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dpop = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dpopJwk = dpop.publicKey.export({ format: 'jwk' }) as JWK;
  const stored: AgentRecord = {
    grant: 'grant-0000000001',
    agent: name,
    enc_jwk: enc.publicKey.export({ format: 'jwk' }) as JWK,
    dpop_jwk: dpopJwk,
    dpop_jkt: await calculateJwkThumbprint(dpopJwk, 'sha256'),
    enrolled_at_ms: NOW_MS,
  };
  return { stored, decryptionKey: enc.privateKey };
}

const baseGrant: GrantRecord = {
  id: 'grant-0000000001',
  sub: 'idp:corp:owner',
  parent_client: 'argocd',
  app: 'dashboards',
  env: 'prod',
  scopes: ['read:metrics'],
  audience: [],
  token_ttl_seconds: 600,
  expires_at: NOW_MS / 1000 + 3600,
  state: 'active',
  created_at_ms: NOW_MS - 60_000,
};

function context(grant: GrantRecord, agents: AgentRecord[], overrides: Partial<GrantMintContext> = {}) {
  const audited: Array<{ type: string; data: Record<string, unknown> }> = [];
  const tombstoned: string[] = [];
  const ctx: GrantMintContext = {
    issuer: 'https://issuer.test',
    policy: () => POLICY,
    signingKey: () => key,
    revocations: { ready: () => true, check: () => undefined, get: () => undefined },
    audit: {
      publish: async (type, _subject, data) => {
        audited.push({ type, data });
      },
    },
    clock: new ManualClock(NOW_MS),
    grants: {
      grant: async (id) => (id === grant.id ? grant : undefined),
      agents: async () => agents,
      tombstone: async (id) => {
        tombstoned.push(id);
      },
    },
    ...overrides,
  };
  return { ctx, audited, tombstoned };
}

const refusal = (code: string, message: RegExp) => (e: unknown) =>
  e instanceof AppError && e.code === code && message.test(e.message);

describe('mintForGrant', () => {
  it('mints per agent a key-bound token for the grant, encrypted to that agent alone', async () => {
    const a = await agentKeys('web-1');
    const b = await agentKeys('web-2');
    const { ctx, audited } = context(baseGrant, [a.stored, b.stored]);
    const deliveries = await mintForGrant(ctx, baseGrant.id);
    assert.deepEqual(
      deliveries.map((d) => d.agent),
      ['web-1', 'web-2'],
    );
    const [first] = deliveries;
    assert.ok(first);
    assert.deepEqual(decodeProtectedHeader(first.jwe), {
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      cty: 'at+jwt',
      epk: decodeProtectedHeader(first.jwe).epk,
    });
    const { plaintext } = await compactDecrypt(first.jwe, a.decryptionKey);
    const claims = decodeJwt(new TextDecoder().decode(plaintext));
    assert.equal(claims.sub, 'idp:corp:owner');
    assert.deepEqual(claims.act, { sub: 'app:dashboards' });
    assert.equal(claims.client_id, 'client:argocd');
    assert.equal(claims.aoa_grant, baseGrant.id);
    assert.deepEqual(claims.cnf, { jkt: a.stored.dpop_jkt });
    assert.equal(claims.exp, NOW_MS / 1000 + 600);
    assert.equal(claims.jti, first.jti);
    await assert.rejects(compactDecrypt(first.jwe, b.decryptionKey));
    assert.equal(audited[0]?.type, 'grant.minted');
    assert.ok(!JSON.stringify(audited).includes(first.jwe));
  });

  it('never lets a token outlive its grant', async () => {
    const a = await agentKeys('web-1');
    const grant = { ...baseGrant, expires_at: NOW_MS / 1000 + 100 };
    const [delivery] = await mintForGrant(context(grant, [a.stored]).ctx, grant.id);
    assert.equal(delivery?.exp, NOW_MS / 1000 + 100);
  });

  it('refuses a tombstoned, revoked, expired or unknown grant', async () => {
    const a = await agentKeys('web-1');
    await assert.rejects(
      mintForGrant(context({ ...baseGrant, state: 'revoked' }, [a.stored]).ctx, baseGrant.id),
      refusal('failed_precondition', /grant is revoked/),
    );
    const marked = context(baseGrant, [a.stored], {
      revocations: {
        ready: () => true,
        check: () => undefined,
        get: (key) =>
          key === `grant.${baseGrant.id}` ? { id: 'r', at_ms: NOW_MS - 1000, reason: '' } : undefined,
      },
    });
    await assert.rejects(
      mintForGrant(marked.ctx, baseGrant.id),
      refusal('failed_precondition', /grant is revoked \(grant\)/),
    );
    assert.equal(marked.audited.length, 0);
    assert.deepEqual(marked.tombstoned, [baseGrant.id]);
    // A mark older than the grant's restore is one the restore lifted: it no longer binds.
    const restored = context({ ...baseGrant, restored_at_ms: NOW_MS - 500 }, [a.stored], {
      revocations: marked.ctx.revocations,
    });
    assert.equal((await mintForGrant(restored.ctx, baseGrant.id)).length, 1);
    await assert.rejects(
      mintForGrant(context({ ...baseGrant, expires_at: NOW_MS / 1000 }, [a.stored]).ctx, baseGrant.id),
      refusal('failed_precondition', /expired/),
    );
    await assert.rejects(
      mintForGrant(context(baseGrant, []).ctx, 'unknown-grant-id'),
      refusal('not_found', /not found/),
    );
    await assert.rejects(
      mintForGrant(context(baseGrant, []).ctx, 'bad.id'),
      refusal('invalid_argument', /grant_id/),
    );
  });

  it('suspends a grant whose subject was revoked after it was created or restored', async () => {
    const a = await agentKeys('web-1');
    const watermark = (atMs: number) => ({
      ready: () => true,
      check: () => undefined,
      get: (key: string) => (key.startsWith('sub.') ? { id: 'r', at_ms: atMs, reason: '' } : undefined),
    });
    await assert.rejects(
      mintForGrant(
        context(baseGrant, [a.stored], { revocations: watermark(NOW_MS - 1000) }).ctx,
        baseGrant.id,
      ),
      refusal('failed_precondition', /suspended/),
    );
    const restored = { ...baseGrant, restored_at_ms: NOW_MS - 500 };
    const deliveries = await mintForGrant(
      context(restored, [a.stored], { revocations: watermark(NOW_MS - 1000) }).ctx,
      restored.id,
    );
    assert.equal(deliveries.length, 1);
  });

  it('asks policy again on every mint', async () => {
    const a = await agentKeys('web-1');
    const tooLong = { ...baseGrant, token_ttl_seconds: 3600 };
    await assert.rejects(
      mintForGrant(context(tooLong, [a.stored]).ctx, tooLong.id),
      refusal('permission_denied', /max_ttl/),
    );
    const stranger = { ...baseGrant, sub: 'idp:corp:stranger' };
    await assert.rejects(
      mintForGrant(context(stranger, [a.stored]).ctx, stranger.id),
      refusal('permission_denied', /no rule/),
    );
  });

  it('refuses before the revocation view is synchronised, and fails closed on audit', async () => {
    const a = await agentKeys('web-1');
    const unsynced = context(baseGrant, [a.stored], {
      revocations: { ready: () => false, check: () => undefined, get: () => undefined },
    });
    await assert.rejects(mintForGrant(unsynced.ctx, baseGrant.id), refusal('unavailable', /synchronised/));
    const auditDown = context(baseGrant, [a.stored], {
      audit: {
        publish: async () => {
          throw new AppError('unavailable', 'audit log unavailable');
        },
      },
    });
    await assert.rejects(mintForGrant(auditDown.ctx, baseGrant.id), refusal('unavailable', /audit/));
  });
});
