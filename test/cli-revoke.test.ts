import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createVerifier, type Verifier, VerifyError } from '@aoa/sdk';
import { status } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { exportJWK } from 'jose';
import type { ServiceCaller } from '../packages/cli/src/caller.js';
import { RpcError } from '../packages/cli/src/delegate.js';
import { startDev } from '../packages/cli/src/dev.js';
import {
  formatRevocations,
  listRevocationsAll,
  revokeOnce,
  revokeTargetOf,
} from '../packages/cli/src/revoke.js';
import { clientAssertion } from './support/oauth.js';
import { startRevoker } from './support/revoker.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const AUDIENCE = 'https://metrics.internal';

describe('aoa revoke: flag parsing', () => {
  it('takes exactly one target, and --env only with --app', () => {
    assert.deepEqual(revokeTargetOf({ jti: 'abc' }), { kind: 'jti', jti: 'abc' });
    assert.deepEqual(revokeTargetOf({ app: 'jobs', env: 'prod' }), {
      kind: 'app',
      environment: 'prod',
      child: 'jobs',
    });
    assert.deepEqual(revokeTargetOf({ grant: 'g1' }), { kind: 'grant', grantId: 'g1' });
    assert.deepEqual(revokeTargetOf({ subject: 'idp:corp:x' }), { kind: 'subject', subject: 'idp:corp:x' });
    assert.deepEqual(revokeTargetOf({ kid: 'k1' }), { kind: 'kid', kid: 'k1' });
    assert.match((revokeTargetOf({}) as { usage: string }).usage, /exactly one/);
    assert.match((revokeTargetOf({ jti: 'a', kid: 'b' }) as { usage: string }).usage, /exactly one/);
    assert.match((revokeTargetOf({ app: 'jobs' }) as { usage: string }).usage, /--app needs --env/);
    assert.match((revokeTargetOf({ jti: 'a', env: 'prod' }) as { usage: string }).usage, /--env goes with/);
    assert.match((revokeTargetOf({ jti: '' }) as { usage: string }).usage, /must not be empty/);
  });
});

describe('aoa revoke: functions against the issuer and revoker', () => {
  let sys: TestSystem;
  let rev: Awaited<ReturnType<typeof startRevoker>>;
  let nc: NatsConnection;
  let verifier: Verifier;
  let admin: ServiceCaller;
  before(async () => {
    sys = await startSystem();
    rev = await startRevoker(sys);
    nc = await connect({ servers: sys.nats.url });
    verifier = createVerifier({ issuer: sys.issuer.issuer, audience: AUDIENCE, nats: nc });
    await verifier.whenReady();
    admin = {
      grpc: `127.0.0.1:${rev.revoker.grpcPort}`,
      issuer: sys.issuer.issuer,
      clientId: 'ops',
      clientJwk: { ...(await exportJWK(sys.keys.admin.privateKey)), kid: 'ops-1' },
    };
  });
  after(async () => {
    verifier?.close();
    await nc?.close();
    await rev?.stop();
    await sys?.stop();
  });

  const bearer = async () =>
    callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('ci-runner'),
        child: 'jobs',
        environment: 'staging',
        scopes: ['run:job'],
      },
      { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
    );
  const request = (token: string) => ({
    authorization: `Bearer ${token}`,
    dpop: undefined,
    method: 'GET',
    url: `${AUDIENCE}/x`,
  });

  it('revokes a jti as the admin: the verifier is told and refuses the (cached) token; a repeat is idempotent; list shows it', async () => {
    const token = await bearer();
    assert.equal((await verifier.verify(request(token.accessToken))).jti, token.jti);
    const changed = new Promise<string>((resolve) => {
      const off = verifier.onRevocationChange((key) => {
        off();
        resolve(key);
      });
    });
    const first = await revokeOnce(admin, { kind: 'jti', jti: token.jti }, 'cli test');
    assert.equal(first.key, `jti.${token.jti}`);
    assert.equal(await changed, first.key);
    await assert.rejects(verifier.verify(request(token.accessToken)), (error: unknown) => {
      assert.ok(error instanceof VerifyError);
      assert.match(error.reason, /revoked/);
      return true;
    });
    const again = await revokeOnce(admin, { kind: 'jti', jti: token.jti }, 'cli test');
    assert.equal(again.revocationId, first.revocationId);
    const listed = await listRevocationsAll(admin, { kind: 'jti' });
    const entry = listed.find((r) => r.key === first.key);
    assert.equal(entry?.reason, 'cli test');
    assert.equal(entry?.by, 'client:ops');
    assert.match(
      formatRevocations(listed),
      new RegExp(`^KEY\\s+KIND\\s+AT\\s+BY\\s+REASON\\n.*jti\\.${token.jti}`, 'm'),
    );
  });

  it('an app watermark through the CLI function refuses that app only', async () => {
    const token = await bearer();
    const r = await revokeOnce(admin, { kind: 'app', environment: 'staging', child: 'jobs' }, '');
    assert.equal(r.key, 'app.staging.jobs');
    const listed = await listRevocationsAll(admin, { kind: 'app', environment: 'staging', app: 'jobs' });
    assert.deepEqual(
      listed.map((x) => x.key),
      ['app.staging.jobs'],
    );
    // The mirror applies the watermark through its watch, in milliseconds: poll briefly.
    for (let i = 0; ; i++) {
      try {
        await assert.rejects(verifier.verify(request(token.accessToken)), /revoked/);
        break;
      } catch (error) {
        if (i >= 1500) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  });

  it('a non-admin client is refused with a typed RpcError (exit 3 in the CLI)', async () => {
    const argocd: ServiceCaller = {
      ...admin,
      clientId: 'argocd',
      clientJwk: { ...(await exportJWK(sys.keys.argocd.privateKey)), kid: 'argocd-1' },
    };
    await assert.rejects(
      revokeOnce(argocd, { kind: 'app', environment: 'prod', child: 'dashboards' }, ''),
      (error: unknown) => {
        assert.ok(error instanceof RpcError);
        assert.equal(error.code, status.PERMISSION_DENIED);
        return true;
      },
    );
    await assert.rejects(
      revokeOnce(admin, { kind: 'app', environment: 'prod', child: 'Not Valid!' }, ''),
      (error: unknown) => error instanceof RpcError && error.code === status.INVALID_ARGUMENT,
    );
  });
});

describe('aoa revoke --dev against aoa dev', () => {
  let dir: string;
  let dev: Awaited<ReturnType<typeof startDev>>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-revoke-'));
    dev = await startDev({ dataDir: dir, logLevel: 'warn' });
  });
  after(async () => {
    await dev?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const aoa = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'packages/cli/src/main.ts'), ...args, '--data-dir', dir],
        { cwd: ROOT, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('revokes a delegated token, lists it, and refuses bad usage with exit 2', async () => {
    assert.match(dev.facts.revoker.grpc, /^127\.0\.0\.1:\d+$/);
    const issued = await aoa(
      'delegate',
      '--dev',
      '--child',
      'dashboards',
      '--env',
      'prod',
      '--scope',
      'read:metrics',
      '--json',
    );
    assert.equal(issued.code, 0, issued.stderr);
    const { jti } = JSON.parse(issued.stdout) as { jti: string };
    const revoked = await aoa('revoke', '--dev', '--jti', jti, '--reason', 'leaked');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked jti\\.${jti}`));
    const listed = await aoa('revocations', 'list', '--dev', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as Array<{ key: string }>).some((r) => r.key === `jti.${jti}`));
    const usage = await aoa('revoke', '--dev', '--app', 'dashboards');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--app needs --env/);
  });

  it('delegates to several children in one DelegateBatch, each with its own key, and reports each refusal', async () => {
    const both = await aoa(
      'delegate',
      '--dev',
      '--child',
      'dashboards',
      '--child',
      'jobs',
      '--env',
      'prod',
      '--scope',
      'read:metrics',
      '--json',
    );
    assert.equal(both.code, 0, both.stderr);
    const outcomes = JSON.parse(both.stdout) as Array<{
      child: string;
      issued: { jti: string };
      holderPrivateJwk: { x: string };
    }>;
    assert.deepEqual(
      outcomes.map((o) => o.child),
      ['dashboards', 'jobs'],
    );
    assert.notEqual(outcomes[0]?.issued.jti, outcomes[1]?.issued.jti);
    assert.notEqual(outcomes[0]?.holderPrivateJwk.x, outcomes[1]?.holderPrivateJwk.x);
    const mixed = await aoa(
      'delegate',
      '--dev',
      '--child',
      'dashboards',
      '--child',
      'reports',
      '--env',
      'prod',
      '--scope',
      'read:metrics',
    );
    assert.equal(mixed.code, 3, mixed.stderr);
    assert.match(
      mixed.stdout,
      /^issued DPoP token for dashboards in prod: jti \S+, rule deployers-dashboards\n/,
    );
    assert.match(mixed.stdout, /\nrefused reports: PERMISSION_DENIED: .+ \[reason UNKNOWN_APP\]\n$/);
  });

  it('prints a refusal with its reason and the rule it broke (the ErrorInfo), exit 3', async () => {
    const refused = await aoa(
      'delegate',
      '--dev',
      '--child',
      'dashboards',
      '--env',
      'prod',
      '--scope',
      'write:config',
    );
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      refused.stderr,
      /^aoa delegate: refused: PERMISSION_DENIED: .+ \[reason SCOPE_NOT_ALLOWED, rule deployers-dashboards\]\n$/,
    );
  });
});
