import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUCKETS } from '@aoa/core';
import { auditor as pb } from '@aoa/proto';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { JWK } from 'jose';
import { queryAuditor } from '../packages/cli/src/audit.js';
import type { ServiceCaller } from '../packages/cli/src/caller.js';
import { rebuildRevocations } from '../packages/cli/src/revocations-rebuild.js';
import { startAuditor, systemAccess, type TestAuditor, until } from './support/auditor.js';
import { clientAssertion } from './support/oauth.js';
import { callRevoke, startRevoker } from './support/revoker.js';
import { startSystem, type TestSystem } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('aoa revocations rebuild: the bucket restored from the audit store', () => {
  let sys: TestSystem;
  let rev: Awaited<ReturnType<typeof startRevoker>>;
  let auditor: TestAuditor;
  let nc: NatsConnection;
  let storeDir: string;
  let admin: ServiceCaller;
  let keyFile: string;

  before(async () => {
    sys = await startSystem();
    rev = await startRevoker(sys);
    storeDir = await mkdtemp(join(tmpdir(), 'aoa-rebuild-audit-'));
    auditor = await startAuditor(sys.nats.url, storeDir, {}, systemAccess(sys));
    nc = await connect({ servers: sys.nats.url });
    const jwk = { ...sys.keys.admin.privateKey.export({ format: 'jwk' }), kid: 'ops-1', alg: 'EdDSA' } as JWK;
    keyFile = join(sys.dir, 'ops.jwk');
    await writeFile(keyFile, JSON.stringify(jwk), { mode: 0o600 });
    admin = {
      grpc: `127.0.0.1:${auditor.grpcPort}`,
      issuer: sys.issuer.issuer,
      clientId: 'ops',
      clientJwk: jwk,
    };
  });
  after(async () => {
    await nc?.close();
    await auditor?.stop();
    await rev?.stop();
    await sys?.stop();
    await rm(storeDir, { recursive: true, force: true });
  });

  it('writes back exactly what the bucket lost, with the original records, and is idempotent', async () => {
    const md = async () => ({
      'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
    });
    const jti = 'AAAAAAAAAAAAAAAAAAAAAA';
    await callRevoke(rev.client, { jti, reason: 'leaked' }, await md());
    await callRevoke(
      rev.client,
      { app: { environment: 'prod', child: 'jobs' }, reason: 'rotate all' },
      await md(),
    );
    await callRevoke(rev.client, { kid: 'lost-key', reason: 'exposed' }, await md());
    await until('the three revocations in the audit store', async () => {
      const stored = await queryAuditor(admin, pb.QueryRequest.fromPartial({ types: ['revocation.issued'] }));
      return stored.length >= 3 ? stored : undefined;
    });

    const kv = await new Kvm(nc).open(BUCKETS.revocations);
    const before = new Map<string, string>();
    for (const key of [`jti.${jti}`, 'app.prod.jobs', 'kid.lost-key']) {
      before.set(key, (await kv.get(key))?.string() ?? '');
      await kv.purge(key);
    }
    // One entry survived the disaster: rebuilding must leave it alone.
    await kv.put(`jti.${jti}`, before.get(`jti.${jti}`) ?? '');

    const dry = await rebuildRevocations(
      { auditor: admin, nats: { url: sys.nats.url } },
      { dryRun: true, nowMs: Date.now() },
    );
    assert.deepEqual(dry.restored.sort(), ['app.prod.jobs', 'kid.lost-key']);
    assert.equal((await kv.get('kid.lost-key'))?.operation === 'PUT', false, 'a dry run writes nothing');

    const report = await rebuildRevocations(
      { auditor: admin, nats: { url: sys.nats.url } },
      { dryRun: false, nowMs: Date.now() },
    );
    assert.deepEqual(report.restored.sort(), ['app.prod.jobs', 'kid.lost-key']);
    assert.equal(report.present, 1);
    assert.equal(report.malformed, 0);
    for (const [key, original] of before) {
      assert.deepEqual(
        JSON.parse((await kv.get(key))?.string() ?? '{}'),
        JSON.parse(original),
        `${key} as it was`,
      );
    }

    const again = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'packages/cli/src/main.ts'),
          'revocations',
          'rebuild',
          '--grpc',
          admin.grpc,
          '--issuer',
          sys.issuer.issuer,
          '--client-id',
          'ops',
          '--client-key',
          keyFile,
          '--nats',
          sys.nats.url,
          '--json',
        ],
        { cwd: ROOT, timeout: 60_000 },
        (error, stdout) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout }),
      ),
    );
    assert.equal(again.code, 0);
    const second = JSON.parse(again.stdout) as { restored: string[]; present: number };
    assert.deepEqual(second.restored, [], 'a second run restores nothing');
    assert.equal(second.present, 3);
  });

  it('needs an administrator of the audit store', async () => {
    const argocdJwk = {
      ...sys.keys.argocd.privateKey.export({ format: 'jwk' }),
      kid: 'argocd-1',
      alg: 'EdDSA',
    } as JWK;
    await assert.rejects(
      rebuildRevocations(
        { auditor: { ...admin, clientId: 'argocd', clientJwk: argocdJwk }, nats: { url: sys.nats.url } },
        { dryRun: true, nowMs: Date.now() },
      ),
      /PERMISSION_DENIED/,
    );
  });
});
