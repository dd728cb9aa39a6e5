import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAuditor, systemAccess } from './support/auditor.js';
import { makeCertificates } from './support/certificates.js';
import { aoa, writeClientKey } from './support/cli.js';
import { startSystem, type TestSystem } from './support/system.js';

const _ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('the CLI over TLS (--tls-ca)', () => {
  let dir: string;
  let sys: TestSystem;
  let target: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-tls-'));
    makeCertificates(dir);
    sys = await startSystem({
      AOA_TLS_CERT_FILE: join(dir, 'server.pem'),
      AOA_TLS_KEY_FILE: join(dir, 'server-key.pem'),
    });
    const keyFile = await writeClientKey(dir, 'ops', sys.keys.admin, 'ops-1');
    target = [
      '--grpc',
      `127.0.0.1:${sys.issuer.grpcPort}`,
      '--issuer',
      sys.issuer.issuer,
      '--client-id',
      'ops',
      '--client-key',
      keyFile,
    ];
  });
  after(async () => {
    await sys?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the audit over TLS: the auditor takes the same certificate pair', async () => {
    const store = join(dir, 'audit');
    const auditor = await startAuditor(
      sys.nats.url,
      store,
      { AOA_TLS_CERT_FILE: join(dir, 'server.pem'), AOA_TLS_KEY_FILE: join(dir, 'server-key.pem') },
      systemAccess(sys),
    );
    try {
      const auditTarget = [...target.slice(2), '--grpc', `127.0.0.1:${auditor.grpcPort}`];
      const verified = await aoa(
        'audit',
        'verify',
        ...auditTarget,
        '--tls-ca',
        join(dir, 'ca.pem'),
        '--json',
      );
      assert.equal(verified.code, 0, verified.stderr + verified.stdout);
      assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);
      const healthz = await fetch(`http://127.0.0.1:${auditor.httpPort}/healthz`).catch(() => undefined);
      assert.equal(healthz, undefined, 'the HTTP listener speaks TLS only');
    } finally {
      await auditor.stop();
    }
  });

  it('calls a TLS listener when given the CA, and says the service is unavailable without it', async () => {
    assert.match(sys.issuer.issuer, /^https:/, 'the issuer serves HTTPS with the pair');
    const rotated = await aoa('keys', 'rotate', ...target, '--tls-ca', join(dir, 'ca.pem'), '--json');
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.ok((JSON.parse(rotated.stdout) as { activeKid: string }).activeKid);
    const plaintext = await aoa('keys', 'rotate', ...target);
    assert.equal(plaintext.code, 4, plaintext.stderr);
    assert.match(plaintext.stderr, /aoa keys rotate: refused: UNAVAILABLE/);
  });
});
