import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAuditorConfig } from './config.js';

const base = {
  NATS_URL: 'nats://127.0.0.1:4222',
  AOA_POLICY_FILE: '/etc/aoa/policy.yaml',
  AOA_ISSUER_URL: 'https://issuer.example',
};

describe('auditor configuration', () => {
  it('takes the PostgreSQL password from a file, so the URL carries none', () => {
    const config = loadAuditorConfig({
      ...base,
      AOA_AUDIT_DB: 'postgres://aoa@db:5432/aoa_audit',
      AOA_AUDIT_DB_PASSWORD_FILE: '/run/secrets/postgres_password',
    });
    assert.deepEqual(config.store, {
      kind: 'postgres',
      url: 'postgres://aoa@db:5432/aoa_audit',
      passwordFile: '/run/secrets/postgres_password',
    });
  });

  it('refuses a password file for the embedded store, naming the variable', () => {
    assert.throws(
      () => loadAuditorConfig({ ...base, AOA_AUDIT_DB: './data/audit', AOA_AUDIT_DB_PASSWORD_FILE: '/x' }),
      /AOA_AUDIT_DB_PASSWORD_FILE: only with a postgres:\/\/ AOA_AUDIT_DB/,
    );
  });

  it('uses the embedded store for anything that is not a postgres:// URL', () => {
    assert.deepEqual(loadAuditorConfig({ ...base, AOA_AUDIT_DB: '/var/lib/aoa/audit' }).store, {
      kind: 'pglite',
      dataDir: '/var/lib/aoa/audit',
    });
  });

  it('takes a TLS pair for its listeners, both files or neither', () => {
    const tls = loadAuditorConfig({
      ...base,
      AOA_TLS_CERT_FILE: '/tls/cert.pem',
      AOA_TLS_KEY_FILE: '/tls/key.pem',
    });
    assert.deepEqual(tls.tls, { certFile: '/tls/cert.pem', keyFile: '/tls/key.pem', reloadMs: 10_000 });
    assert.equal(tls.grpcTls, tls.tls, 'no client CAs: the gRPC listener takes the same files');
    const certified = loadAuditorConfig({
      ...base,
      AOA_TLS_CERT_FILE: '/tls/cert.pem',
      AOA_TLS_KEY_FILE: '/tls/key.pem',
      AOA_TLS_RELOAD_INTERVAL: '0s',
      AOA_AUDITOR_TLS_CLIENT_CA_FILE: fileURLToPath(import.meta.url),
    });
    assert.deepEqual(certified.tls, { certFile: '/tls/cert.pem', keyFile: '/tls/key.pem', reloadMs: 0 });
    assert.equal(certified.grpcTls?.clientCaFile, fileURLToPath(import.meta.url), 'client CAs on gRPC only');
    assert.equal(loadAuditorConfig(base).tls, undefined);
    assert.throws(
      () => loadAuditorConfig({ ...base, AOA_TLS_CERT_FILE: '/tls/cert.pem' }),
      /AOA_TLS_KEY_FILE: TLS needs both AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE/,
    );
  });
});
