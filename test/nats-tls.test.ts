import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, connectNats, createLogger } from '@aoa/core';
import { startNats } from '@aoa/testkit';
import { loadRotatorConfig } from '../services/rotator/src/config.js';
import { makeCertificates } from './support/certificates.js';
import { makeKey } from './support/oauth.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

const log = createLogger({ service: 'test', level: 'silent' });
let dir: string;
let sys: TestSystem;
const file = (name: string) => join(dir, name);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aoa-nats-tls-'));
  makeCertificates(dir);
  // Mutual TLS: the server presents its certificate and asks every client for one signed by the CA.
  const config = file('nats-tls.conf');
  await writeFile(
    config,
    `tls {\n  cert_file: "${file('server.pem')}"\n  key_file: "${file('server-key.pem')}"\n` +
      `  ca_file: "${file('ca.pem')}"\n  verify: true\n  timeout: 2\n}\n`,
  );
  sys = await startSystem(
    {
      NATS_TLS_CA_FILE: file('ca.pem'),
      NATS_TLS_CERT_FILE: file('client.pem'),
      NATS_TLS_KEY_FILE: file('client-key.pem'),
    },
    { nats: { configFile: config } },
  );
});

after(async () => {
  await sys?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('TLS to NATS', () => {
  it('runs a service over mutual TLS with the CA, certificate and key from its environment', async () => {
    const holder = await makeKey();
    const response = await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: holder.jkt });
    assert.equal(response.tokenType, 'DPoP');
  });

  it("refuses a connection that does not trust the server's CA, and says which setting to check", async () => {
    await assert.rejects(
      connectNats({ url: sys.nats.url, name: 'no-ca' }, log),
      /NATS TLS failed at nats:\/\/127\.0\.0\.1:\d+: .*; set NATS_TLS_CA_FILE to the CA/,
    );
    // Trusting another CA is no better.
    await assert.rejects(
      connectNats({ url: sys.nats.url, name: 'wrong-ca', tls: { caFile: file('client.pem') } }, log),
      /NATS TLS failed at .*; check that .*client\.pem \(NATS_TLS_CA_FILE\) signed/,
    );
  });

  it('is refused by a server that verifies clients when it presents no certificate', async () => {
    await assert.rejects(
      connectNats({ url: sys.nats.url, name: 'no-cert', tls: { caFile: file('ca.pem') } }, log),
      // The server ends the handshake; nats.js 3.3 reports only that the connection timed out.
      /timeout/,
    );
  });

  it('refuses a plaintext server when TLS is configured', async () => {
    const plain = await startNats({ jetstream: false });
    try {
      await assert.rejects(
        connectNats({ url: plain.url, name: 'downgrade', tls: { caFile: file('ca.pem') } }, log),
        /NATS TLS failed at .*: server does not support 'tls'; the server offers no TLS/,
      );
    } finally {
      await plain.stop();
    }
  });

  it('checks the TLS files when the configuration loads', () => {
    const base = {
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
    };
    assert.throws(
      () => loadRotatorConfig({ ...base, NATS_TLS_CERT_FILE: file('client.pem') }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.problems.some((p) => /NATS_TLS_KEY_FILE.*both NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE/.test(p)),
    );
    assert.throws(
      () => loadRotatorConfig({ ...base, NATS_TLS_CA_FILE: file('missing.pem') }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => /NATS_TLS_CA_FILE.*ENOENT/.test(p)),
    );
    assert.deepEqual(loadRotatorConfig({ ...base, NATS_TLS_CA_FILE: file('ca.pem') }).natsTls, {
      caFile: file('ca.pem'),
    });
    assert.equal(loadRotatorConfig(base).natsTls, undefined);
  });
});
