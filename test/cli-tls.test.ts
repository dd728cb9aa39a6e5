import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeCertificates } from './support/certificates.js';
import { startSystem, type TestSystem } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const aoa = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'packages/cli/src/main.ts'), ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

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
    const keyFile = join(dir, 'ops.jwk');
    const jwk = { ...sys.keys.admin.privateKey.export({ format: 'jwk' }), kid: 'ops-1', alg: 'EdDSA' };
    await writeFile(keyFile, JSON.stringify(jwk), { mode: 0o600 });
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
