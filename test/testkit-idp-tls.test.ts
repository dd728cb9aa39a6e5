import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startIdp } from '@aoa/testkit';
import { decodeJwt } from 'jose';
import { makeCertificates } from './support/certificates.js';
import { postOverTls } from './support/oauth-http.js';

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
      const answer = await postOverTls(
        idp.tlsTokenEndpoint as string,
        { grant_type: 'client_credentials', resource: 'https://api.aoa.test' },
        { ca: await readFile(join(dir, 'ca.pem')) },
        {
          authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
        },
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const claims = decodeJwt(answer.body.access_token as string);
      assert.equal(claims.iss, idp.issuer);
      assert.equal(claims.aud, 'https://api.aoa.test');
      await using plain = await startIdp();
      assert.equal(plain.tlsTokenEndpoint, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
