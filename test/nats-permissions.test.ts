import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createVerifier, type Verifier } from '@aoa/sdk';
import { Metadata } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { query, startAuditor, systemAccess, until, unusedScopes, verifyChain } from './support/auditor.js';
import {
  AUTH_CONFIG,
  type NatsCredentials,
  type NatsUser,
  natsCredentials,
  subscriptionRefused,
  violations,
} from './support/nats-auth.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { consoleToken, operatorMetadata } from './support/operator.js';
import { callRevoke, startRevoker } from './support/revoker.js';
import { callRotator, startRotator } from './support/rotator.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

let creds: NatsCredentials;
let sys: TestSystem;
let verifierConnection: NatsConnection;
let verifier: Verifier;
let holder: TestKey;

before(async () => {
  creds = await natsCredentials();
  sys = await startSystem(creds.serviceEnv('issuer'), { nats: { configFile: AUTH_CONFIG } });
  verifierConnection = await connect({
    servers: sys.nats.url,
    user: 'verifier-dashboards-api',
    pass: creds.password('verifier-dashboards-api'),
    inboxPrefix: '_INBOX_VERIFIER_dashboards-api',
  });
  verifier = createVerifier({
    issuer: sys.issuer.issuer,
    audience: 'https://dashboards.internal',
    nats: verifierConnection,
  });
  holder = await makeKey();
});

after(async () => {
  verifier?.close();
  await verifierConnection?.close();
  await sys?.stop();
  await creds?.remove();
});

describe('NATS permissions from infra/nats/auth.conf', () => {
  it('lets the issuer do all its work through its own user', async () => {
    const response = await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: holder.jkt });
    assert.equal(response.tokenType, 'DPoP');
    // connectNats logs every error the server sends, permissions violations included.
    assert.doesNotMatch(sys.logs.text(), /Permissions Violation/);
  });

  it('lets a verifier mirror the keys and revocations and verify a token through its own user', async () => {
    const { accessToken } = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    });
    await verifier.whenReady();
    const url = 'https://dashboards.internal/api';
    const claims = await verifier.verify({
      authorization: `DPoP ${accessToken}`,
      dpop: await dpopProof(holder, 'GET', url, accessToken),
      method: 'GET',
      url,
    });
    assert.equal(claims.sub, 'idp:corp:argocd-sa');
  });

  it('lets the revoker revoke through its own user, and the verifier sees it at once', async () => {
    const revoker = await startRevoker(sys, creds.serviceEnv('revoker'));
    try {
      const { accessToken, jti } = await rootDelegateAsArgocd(sys, {
        scopes: ['read:metrics'],
        holderJkt: holder.jkt,
      });
      const revoked = new Promise<void>((resolve) => {
        const stop = verifier.onRevocationChange((key) => {
          if (key === `jti.${jti}`) {
            stop();
            resolve();
          }
        });
      });
      await callRevoke(
        revoker.client,
        { jti, reason: 'permissions test' },
        { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) },
      );
      await revoked;
      const url = 'https://dashboards.internal/api';
      await assert.rejects(
        verifier.verify({
          authorization: `DPoP ${accessToken}`,
          dpop: await dpopProof(holder, 'GET', url, accessToken),
          method: 'GET',
          url,
        }),
        /revoked/,
      );
      assert.doesNotMatch(sys.logs.text(), /Permissions Violation/);
    } finally {
      await revoker.stop();
    }
  });

  it('refuses the revoker the sealed signing keys of the issuer', async () => {
    const nc = await connect({
      servers: sys.nats.url,
      user: 'revoker',
      pass: creds.password('revoker'),
    });
    try {
      await assert.rejects(
        nc.request('$JS.API.STREAM.INFO.KV_aoa_signing_keys', '', { timeout: 1000 }),
        /permission/i,
      );
      await assert.rejects(
        nc.request('$JS.API.DIRECT.GET.KV_aoa_signing_keys.$KV.aoa_signing_keys.ring', '', { timeout: 1000 }),
        /permission/i,
      );
    } finally {
      await nc.close();
    }
  });

  it('refuses every service deleting or purging a stream or erasing a message, and the issuer and revoker other streams', async () => {
    const erasing = ['AOA_AUDIT', 'KV_aoa_revocations', 'KV_aoa_keys', 'KV_aoa_grants'].flatMap((stream) => [
      `$JS.API.STREAM.DELETE.${stream}`,
      `$JS.API.STREAM.PURGE.${stream}`,
      `$JS.API.STREAM.MSG.DELETE.${stream}`,
    ]);
    const foreign: Partial<Record<NatsUser, string[]>> = {
      issuer: ['$JS.API.STREAM.INFO.AOA_CREDS', '$JS.API.CONSUMER.CREATE.AOA_AUDIT', '$JS.API.STREAM.LIST'],
      revoker: [
        '$JS.API.STREAM.INFO.AOA_CREDS',
        '$JS.API.CONSUMER.CREATE.AOA_AUDIT',
        '$JS.API.STREAM.MSG.GET.AOA_AUDIT',
      ],
      rotator: [],
      auditor: [],
    };
    for (const [user, subjects] of Object.entries(foreign)) {
      const nc = await connect({ servers: sys.nats.url, user, pass: creds.password(user as NatsUser) });
      try {
        for (const subject of [...erasing, ...(subjects ?? [])]) {
          await assert.rejects(
            nc.request(subject, '{}', { timeout: 1000 }),
            /permission/i,
            `${user}: ${subject}`,
          );
        }
      } finally {
        await nc.close();
      }
    }
    // What the refusals protect is still there, whole.
    const issuer = await connect({ servers: sys.nats.url, user: 'issuer', pass: creds.password('issuer') });
    try {
      const info = await issuer.request('$JS.API.STREAM.INFO.AOA_AUDIT', '', { timeout: 1000 });
      assert.equal(info.json<{ config?: { name?: string } }>().config?.name, 'AOA_AUDIT');
    } finally {
      await issuer.close();
    }
  });

  it('refuses a verifier any credential subject, other inboxes and the audit stream', async () => {
    const refused = violations(verifierConnection);
    const subjects = ['aoa.creds.prod.dashboards.agent-1', 'aoa.creds.>', '_INBOX.>', 'aoa.audit.>', '>'];
    for (const subject of subjects)
      assert.ok(await subscriptionRefused(verifierConnection, subject), subject);
    for (const subject of subjects) {
      assert.ok(
        refused.some((v) => v.includes(`Subscription to "${subject}"`)),
        `no permissions violation reported for ${subject}`,
      );
    }
    assert.equal(await subscriptionRefused(verifierConnection, 'aoa.revoked.all'), false);
  });

  it('refuses a verifier publishing on aoa subjects and reading the sealed signing keys', async () => {
    const errors = violations(verifierConnection);
    verifierConnection.publish('aoa.audit.delegation.issued', '{}');
    verifierConnection.publish('aoa.revoked.all', '{}');
    await verifierConnection.flush();
    await assert.rejects(
      verifierConnection.request('$JS.API.STREAM.INFO.KV_aoa_signing_keys', '', { timeout: 1000 }),
      /permission|no responders|timeout/i,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(
      errors.filter((e) => /permission/i.test(e)).length >= 2,
      `expected permission errors, got ${errors.join('; ')}`,
    );
  });
  it('lets the auditor store the audit events through its own user', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aoa-audit-'));
    const auditor = await startAuditor(sys.nats.url, dir, creds.serviceEnv('auditor'), systemAccess(sys));
    try {
      const { jti } = await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: holder.jkt });
      // The query authenticates its caller against aoa_replay, through the same user.
      const stored = await until('the delegation in the audit store', async () => {
        const found = await query(auditor, { types: ['delegation.issued'] });
        return found.some((e) => e.data?.jti === jti) && found;
      });
      assert.ok(stored.length >= 1);
      // A signed checkpoint goes to AOA_AUDIT_CHECKPOINTS every 200 ms (the test setting); VerifyChain
      // reads them back.
      await new Promise((resolve) => setTimeout(resolve, 600));
      const chain = await verifyChain(auditor);
      assert.equal(chain.ok, true, chain.problems.join('; '));
      // A verifier's scope usage report reaches the auditor through both users.
      const reported = violations(verifierConnection);
      verifierConnection.publish(
        'aoa.usage.prod.dashboards',
        JSON.stringify({ env: 'prod', app: 'dashboards', scopes: ['read:metrics'], from_ms: 1, to_ms: 2 }),
      );
      await until('the usage report in the audit store', async () => {
        const { apps } = await unusedScopes(auditor, { env: 'prod', app: 'dashboards' });
        return apps[0]?.exercised.includes('read:metrics');
      });
      assert.deepEqual(reported, []);
      assert.doesNotMatch(auditor.logs.text(), /Permissions Violation/);
    } finally {
      await auditor.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets the auditor and the rotator verify an operator token through their own users', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aoa-audit-'));
    const auditor = await startAuditor(sys.nats.url, dir, creds.serviceEnv('auditor'), systemAccess(sys));
    const rot = await startRotator(sys, creds.serviceEnv('rotator'));
    try {
      const operator = await consoleToken(sys);
      const md = new Metadata();
      const htu = `${auditor.grpcUrl}/aoa.v1.Auditor/VerifyChain`;
      for (const [key, value] of Object.entries(await operatorMetadata(operator, htu))) md.set(key, value);
      // Answered at all is the point (the chain itself is another test's: this store starts empty).
      await new Promise((resolve, reject) =>
        auditor.client.verifyChain({}, md, (error, response) => (error ? reject(error) : resolve(response))),
      );
      await callRotator(
        rot.client,
        rot.client.listGrants,
        { environment: '', child: '' },
        await operatorMetadata(operator, `${rot.rotator.grpcUrl}/aoa.v1.Rotator/ListGrants`),
      );
      assert.doesNotMatch(auditor.logs.text(), /Permissions Violation/);
      assert.doesNotMatch(sys.logs.text(), /Permissions Violation/);
    } finally {
      await rot.stop();
      await auditor.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses the auditor the signing keys, the credentials and publishing revocations', async () => {
    const nc = await connect({ servers: sys.nats.url, user: 'auditor', pass: creds.password('auditor') });
    try {
      for (const subject of [
        '$JS.API.STREAM.INFO.KV_aoa_signing_keys',
        '$JS.API.STREAM.INFO.AOA_CREDS',
        '$JS.API.STREAM.INFO.KV_aoa_grants',
        '$JS.API.CONSUMER.CREATE.AOA_AUDIT',
        '$JS.API.STREAM.DELETE.AOA_AUDIT',
        '$JS.API.STREAM.PURGE.AOA_AUDIT_CHECKPOINTS',
        '$JS.API.CONSUMER.DELETE.AOA_AUDIT.auditor',
      ]) {
        await assert.rejects(nc.request(subject, '', { timeout: 1000 }), /permission/i, subject);
      }
      assert.ok(await subscriptionRefused(nc, 'aoa.creds.>'));
      const refused = violations(nc);
      nc.publish('aoa.revoked.all', '{}');
      nc.publish('aoa.creds.prod.dashboards.dash-1', '{}');
      await nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(refused.filter((e) => /permission/i.test(e)).length, 2, refused.join('; '));
    } finally {
      await nc.close();
    }
  });
});
