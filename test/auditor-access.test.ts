import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { auditor as pb } from '@aoa/proto';
import { startNats } from '@aoa/testkit';
import { Metadata, status } from '@grpc/grpc-js';
import {
  burst,
  cleanupAfterAll,
  lineage,
  publisher,
  query,
  startAuditor,
  systemAccess,
  until,
  verdict,
  verifyChain,
} from './support/auditor.js';
import { clientAssertion, makeKey } from './support/oauth.js';
import { rootDelegateAsArgocd, startSystem } from './support/system.js';

const cleanups = cleanupAfterAll();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-audit-access-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const code = (expected: number, details: RegExp) => (e: { code: number; details: string }) =>
  e.code === expected && details.test(e.details);

describe('the Auditor API', () => {
  it('answers administrators only: no proof, a non-admin client and a replayed assertion are refused', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const auditor = await startAuditor(nats.url, await tempDir());
    cleanups.push(() => auditor.stop());
    const { admin, nonAdmin } = auditor.access;

    await assert.rejects(query(auditor, {}, null), code(status.UNAUTHENTICATED, /client-assertion/));
    await assert.rejects(verifyChain(auditor, null), code(status.UNAUTHENTICATED, /client-assertion/));
    await assert.rejects(
      lineage(auditor, 'some-jti', null),
      code(status.UNAUTHENTICATED, /client-assertion/),
    );
    await assert.rejects(query(auditor, {}, nonAdmin), code(status.PERMISSION_DENIED, /administrators only/));
    await assert.rejects(
      verifyChain(auditor, nonAdmin),
      code(status.PERMISSION_DENIED, /administrators only/),
    );
    const stranger = { ...admin, key: await makeKey() };
    await assert.rejects(verifyChain(auditor, stranger), code(status.UNAUTHENTICATED, /^client assertion: /));
    const wrongAudience = { ...admin, issuer: 'https://elsewhere.test' };
    await assert.rejects(
      verifyChain(auditor, wrongAudience),
      code(status.UNAUTHENTICATED, /^client assertion: /),
    );

    const assertion = await clientAssertion(admin.clientId, admin.key, admin.issuer);
    const once = () =>
      new Promise<pb.VerifyChainResponse>((resolve, reject) => {
        const md = new Metadata();
        md.set('client-assertion', assertion);
        auditor.client.verifyChain({}, md, (error, response) => (error ? reject(error) : resolve(response)));
      });
    assert.deepEqual(verdict(await once()), { ok: true, checked: 0, problems: [] });
    await assert.rejects(once(), code(status.UNAUTHENTICATED, /replay/));
    assert.equal(auditor.logs.text().includes(assertion), false, 'no assertion in the logs');
    assert.match(auditor.logs.text(), /checkpoints are trusted on first use/);
  });
});

describe('pinned checkpoint keys', () => {
  it('make VerifyChain refuse checkpoints signed by any other key, naming them', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const dir = await tempDir();
    const pinned = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519');
    const files = {
      pinnedKey: join(dir, 'pinned.pem'),
      otherKey: join(dir, 'other.pem'),
      trusted: join(dir, 'trusted.jwks'),
    };
    await writeFile(files.pinnedKey, pinned.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await writeFile(files.otherKey, other.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await writeFile(files.trusted, JSON.stringify({ keys: [pinned.publicKey.export({ format: 'jwk' })] }));
    const db = join(dir, 'store');
    const env = { AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS: files.trusted };

    const first = await startAuditor(nats.url, db, { ...env, AOA_AUDITOR_KEY_FILE: files.pinnedKey });
    await burst(audit, 20);
    await until('20 rows', async () => (await first.store.head())?.seq === 20);
    await until('verified', async () => (await verifyChain(first)).ok);
    assert.match(first.logs.text(), /"msg":"checkpoint keys pinned"/);
    await first.stop();

    const second = await startAuditor(nats.url, db, { ...env, AOA_AUDITOR_KEY_FILE: files.otherKey });
    cleanups.push(() => second.stop());
    assert.match(second.logs.text(), /not this auditor's signing key/);
    await burst(audit, 5);
    const otherX = String(other.publicKey.export({ format: 'jwk' }).x).slice(0, 12);
    const result = await until('a checkpoint by the unpinned key', async () => {
      const r = await verifyChain(second);
      return r.problems.length > 0 && r;
    });
    assert.equal(result.ok, false);
    for (const problem of result.problems) {
      assert.match(
        problem,
        new RegExp(
          `^checkpoint at seq \\d+ .* signed by key ${otherX}…, which is not a pinned checkpoint key: not trusted$`,
        ),
      );
    }
  });

  it('refuse to start on a key file that is not an Ed25519 public key, naming the variable', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const dir = await tempDir();
    const file = join(dir, 'trusted.pem');
    await writeFile(
      file,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }),
    );
    await assert.rejects(
      startAuditor(nats.url, join(dir, 'store'), { AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS: file }),
      /AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS: key 1: is ec, checkpoints are signed with Ed25519/,
    );
  });
});

describe('privilege creep', () => {
  it('raises exactly one alert, naming the new scope and the rule, when a widened rule grants more', async () => {
    const sys = await startSystem();
    cleanups.push(() => sys.stop());
    const auditor = await startAuditor(sys.nats.url, await tempDir(), {}, systemAccess(sys));
    cleanups.push(() => auditor.stop());
    const delegate = async (scopes: string[]) =>
      rootDelegateAsArgocd(sys, { scopes, holderJkt: (await makeKey()).jkt });
    await delegate(['read:metrics']);
    await delegate(['read:metrics']);
    const policy = await readFile(sys.policyPath, 'utf8');
    const widened = policy.replace(
      'prod: ["read:metrics", "write:dashboards"]',
      'prod: ["read:metrics", "write:dashboards", "write:config"]',
    );
    assert.notEqual(widened, policy);
    await writeFile(sys.policyPath, widened);
    const wide = await until('the issuer to grant write:config', () =>
      delegate(['read:metrics', 'write:config']).catch(() => undefined),
    );
    await delegate(['read:metrics', 'write:config']);
    await until(
      'four issuances stored',
      async () => (await query(auditor, { types: ['delegation.issued'] })).length === 4,
    );
    const alerts = await until('a creep alert', async () => {
      const found = await query(auditor, { types: ['alert.privilege_creep'] });
      return found.length > 0 && found;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await query(auditor, { types: ['alert.privilege_creep'] })).length, 1, 'exactly one alert');
    const data = alerts[0]?.data ?? {};
    assert.equal(alerts[0]?.subject, 'dashboards.prod');
    assert.deepEqual(data.grew, ['scopes']);
    assert.deepEqual(data.growth, { scopes: { before: ['read:metrics'], added: ['write:config'] } });
    assert.equal(data.rule, 'deployers-dashboards');
    assert.equal(data.jti, wide.jti);
    assert.deepEqual((await query(auditor, { app: 'dashboards', outcome: 'privilege_creep' })).length, 1);
    await until('the alert checkpointed and the chain intact', async () => (await verifyChain(auditor)).ok);
  });
});
