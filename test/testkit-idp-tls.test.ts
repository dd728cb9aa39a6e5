import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startIdp } from '@aoa/testkit';
import { decodeJwt } from 'jose';
import { makeCertificates } from './support/certificates.js';

// The Delegate bench compares aoa's mutual-TLS path with the peer behind TLS too: the testkit's
// provider then also answers over HTTPS, with the same clients and the same HTTP issuer.
describe('the testkit IdP over HTTPS (tls option)', () => {
  it('issues the same client_credentials tokens on its HTTPS port, and has none without the option', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aoa-idp-tls-'));
    try {
      makeCertificates(dir);
      const client = { clientId: 'ci-runner', clientSecret: 'ci-secret-0123456789' };
      await using idp = await startIdp({
        clients: [client],
        tls: {
          cert: await readFile(join(dir, 'server.pem')),
          key: await readFile(join(dir, 'server-key.pem')),
        },
      });
      assert.match(idp.tlsTokenEndpoint ?? '', /^https:\/\/127\.0\.0\.1:\d+\/token$/);
      const body = 'grant_type=client_credentials&resource=https%3A%2F%2Fapi.aoa.test';
      const ca = await readFile(join(dir, 'ca.pem'));
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          idp.tlsTokenEndpoint as string,
          {
            method: 'POST',
            ca,
            headers: {
              authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
              'content-type': 'application/x-www-form-urlencoded',
            },
          },
          (res) => {
            let text = '';
            res.on('data', (chunk) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      assert.equal(answer.status, 200, answer.text);
      const claims = decodeJwt((JSON.parse(answer.text) as { access_token: string }).access_token);
      assert.equal(claims.iss, idp.issuer);
      assert.equal(claims.aud, 'https://api.aoa.test');
      await using plain = await startIdp();
      assert.equal(plain.tlsTokenEndpoint, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
