import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createVerifier, type Verifier } from '@aoa/sdk';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callRevoke, startRevoker } from './support/revoker.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

const CONFIG = fileURLToPath(new URL('../infra/nats/nats-auth.conf', import.meta.url));
// nats-server parses a variable's value as a config token: a password must not read as a number.
const password = () => `p${randomBytes(12).toString('hex')}`;
const passwords = {
  AOA_NATS_ISSUER_PASSWORD: password(),
  AOA_NATS_REVOKER_PASSWORD: password(),
  AOA_NATS_VERIFIER_PASSWORD: password(),
};

let sys: TestSystem;
let verifierConnection: NatsConnection;
let verifier: Verifier;
let holder: TestKey;

before(async () => {
  // nats-server resolves the users' passwords from its environment.
  Object.assign(process.env, passwords);
  const passwordFile = join(tmpdir(), `aoa-nats-issuer-password-${process.pid}`);
  await writeFile(passwordFile, passwords.AOA_NATS_ISSUER_PASSWORD, { mode: 0o600 });
  sys = await startSystem(
    { NATS_USER: 'issuer', NATS_PASSWORD_FILE: passwordFile },
    { nats: { configFile: CONFIG } },
  );
  verifierConnection = await connect({
    servers: sys.nats.url,
    user: 'verifier-dashboards-api',
    pass: passwords.AOA_NATS_VERIFIER_PASSWORD,
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
});

/** Whether the server refused a subscription: it closes it and reports a permissions violation. */
async function subscriptionRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  const sub = nc.subscribe(subject);
  const closed = sub.closed.then(
    () => true,
    () => true,
  );
  const stillOpen = nc
    .flush()
    .then(() => new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)));
  const refused = await Promise.race([closed, stillOpen]);
  sub.unsubscribe();
  return refused;
}

describe('NATS permissions from infra/nats/auth.conf', () => {
  it('lets the issuer do all its work through its own user', async () => {
    const response = await callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('argocd-sa'),
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: holder.jkt,
      },
      { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
    );
    assert.equal(response.tokenType, 'DPoP');
  });

  it('lets a verifier mirror the keys and revocations and verify a token through its own user', async () => {
    const { accessToken } = await callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('argocd-sa'),
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: holder.jkt,
      },
      { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
    );
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
    const passwordFile = join(tmpdir(), `aoa-nats-revoker-password-${process.pid}`);
    await writeFile(passwordFile, passwords.AOA_NATS_REVOKER_PASSWORD, { mode: 0o600 });
    const revoker = await startRevoker(sys, { NATS_USER: 'revoker', NATS_PASSWORD_FILE: passwordFile });
    try {
      const { accessToken, jti } = await callDelegate(
        sys.client,
        {
          subjectToken: await sys.idpToken('argocd-sa'),
          child: 'dashboards',
          environment: 'prod',
          scopes: ['read:metrics'],
          holderJkt: holder.jkt,
        },
        { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
      );
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
    } finally {
      await revoker.stop();
    }
  });

  it('refuses the revoker the sealed signing keys of the issuer', async () => {
    const nc = await connect({
      servers: sys.nats.url,
      user: 'revoker',
      pass: passwords.AOA_NATS_REVOKER_PASSWORD,
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

  it('refuses a verifier any credential subject, other inboxes and the audit stream', async () => {
    const violations: string[] = [];
    void (async () => {
      for await (const s of verifierConnection.status())
        if (s.type === 'error') violations.push(String(s.error));
    })();
    const subjects = ['aoa.creds.prod.dashboards.agent-1', 'aoa.creds.>', '_INBOX.>', 'aoa.audit.>', '>'];
    for (const subject of subjects)
      assert.ok(await subscriptionRefused(verifierConnection, subject), subject);
    for (const subject of subjects) {
      assert.ok(
        violations.some((v) => v.includes(`Subscription to "${subject}"`)),
        `no permissions violation reported for ${subject}`,
      );
    }
    assert.equal(await subscriptionRefused(verifierConnection, 'aoa.revoked.all'), false);
  });

  it('refuses a verifier publishing on aoa subjects and reading the sealed signing keys', async () => {
    const errors: string[] = [];
    void (async () => {
      for await (const s of verifierConnection.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
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
});
