import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { startIdp } from './idp.js';

const RESOURCE = 'https://issuer.aoa.test';
const ci = { clientId: 'ci-runner', clientSecret: 'ci-secret-0123456789', groups: ['ops', 'deploy'] };

describe('startIdp', () => {
  it('issues an at+jwt for the requested resource that verifies against its JWKS', async () => {
    await using idp = await startIdp({ clients: [ci] });
    const jwt = await idp.token(ci.clientId, RESOURCE, 'read');

    assert.equal(decodeProtectedHeader(jwt).typ, 'at+jwt');
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(idp.jwksUri)), {
      issuer: idp.issuer,
      audience: RESOURCE,
      typ: 'at+jwt',
    });
    assert.equal(payload.sub, ci.clientId);
    assert.deepEqual(payload.groups, ci.groups);
    assert.equal(payload.client_id, ci.clientId);
    assert.equal(payload.scope, 'read');
  });

  it('accepts any resource and scope, and a client added while running with its own sub', async () => {
    await using idp = await startIdp();
    idp.addClient({ clientId: 'late', clientSecret: 'late-secret-0123456789', sub: 'svc:late' });
    const jwt = await idp.token('late', 'https://other.aoa.test/api', 'write:config');
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(idp.jwksUri)), {
      issuer: idp.issuer,
      audience: 'https://other.aoa.test/api',
    });
    assert.equal(payload.sub, 'svc:late');
    assert.deepEqual(payload.groups, []);
    assert.equal(payload.scope, 'write:config');
  });

  it('authenticates a client with keys by private_key_jwt, and refuses a replayed assertion', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    await using idp = await startIdp({
      clients: [{ ...ci, jwks: [{ ...(await exportJWK(publicKey)), kid: 'ci-1', alg: 'EdDSA' }] }],
    });
    const assertion = await new SignJWT({ jti: randomBytes(16).toString('base64url') })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'ci-1' })
      .setIssuer(ci.clientId)
      .setSubject(ci.clientId)
      .setAudience(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    const request = () =>
      fetch(idp.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          resource: RESOURCE,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        }),
      });
    const first = await request();
    assert.equal(first.status, 200, await first.clone().text());
    assert.equal(((await first.json()) as { token_type: string }).token_type, 'Bearer');
    const replayed = await request();
    assert.equal(replayed.status, 401);
  });

  it('refuses a client that presents a wrong secret', async () => {
    await using idp = await startIdp({ clients: [ci] });
    const response = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${ci.clientId}:wrong`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE }),
    });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_client');
  });

  it('answers 503 to everything while down, and recovers', async () => {
    await using idp = await startIdp({ clients: [ci] });
    idp.setDown(true);
    await assert.rejects(idp.token(ci.clientId, RESOURCE), /HTTP 503/);
    assert.equal((await fetch(idp.jwksUri)).status, 503);
    idp.setDown(false);
    assert.ok(await idp.token(ci.clientId, RESOURCE));
  });

  it('serves a JWKS that is not JSON while broken', async () => {
    await using idp = await startIdp({ clients: [ci] });
    idp.breakJwks(true);
    const broken = await fetch(idp.jwksUri);
    assert.equal(broken.status, 200);
    await assert.rejects(broken.json(), SyntaxError);
    idp.breakJwks(false);
    const keys = (await (await fetch(idp.jwksUri)).json()) as { keys: Array<Record<string, unknown>> };
    assert.equal(keys.keys.length, 1);
    assert.equal(keys.keys[0]?.d, undefined, 'the JWKS must not publish the private key');
  });
});
