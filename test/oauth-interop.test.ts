import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK, importJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { dpopProof, makeKey } from './support/oauth.js';
import { ACCESS_TOKEN, EXCHANGE, type OAuthHarness, oauthHarness } from './support/oauth-http.js';
import { startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let h: OAuthHarness;

before(async () => {
  sys = await startSystem();
  h = oauthHarness(sys);
});
after(async () => {
  await sys?.stop();
});

describe('metadata (RFC 8414)', () => {
  test('advertises the token, introspection and revocation endpoints, private_key_jwt, token exchange and DPoP', async () => {
    const metadata = (await (
      await fetch(`${h.issuer}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    assert.equal(metadata.issuer, h.issuer);
    assert.equal(metadata.token_endpoint, h.tokenUrl);
    assert.equal(metadata.introspection_endpoint, h.introspectUrl);
    assert.equal(metadata.revocation_endpoint, h.revokeUrl);
    assert.deepEqual(metadata.grant_types_supported, [EXCHANGE]);
    assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.deepEqual(metadata.introspection_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.deepEqual(metadata.revocation_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.ok((metadata.token_endpoint_auth_signing_alg_values_supported as string[]).includes('EdDSA'));
    assert.ok((metadata.dpop_signing_alg_values_supported as string[]).includes('ES256'));
  });
});

describe('interop with openid-client and oauth4webapi', () => {
  test('openid-client exchanges an IdP token with private_key_jwt and DPoP, introspects and revokes it', async () => {
    const config = await h.openidClient();
    const dpopKeys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, dpopKeys);
    const tokens = await oidc.genericGrantRequest(config, EXCHANGE, await h.exchangeParams(), { DPoP });
    assert.equal(tokens.token_type, 'dpop');
    assert.equal(tokens.issued_token_type, ACCESS_TOKEN);
    assert.equal(tokens.scope, 'read:metrics');
    assert.ok((tokens.expires_in ?? 0) > 0);
    const claims = decodeJwt(tokens.access_token);
    const jkt = await calculateJwkThumbprint(await exportJWK(dpopKeys.publicKey));
    assert.deepEqual(claims.cnf, { jkt });
    assert.equal(claims.client_id, 'client:argocd');
    assert.equal(claims.iss, h.issuer);

    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(introspection.active, true);
    assert.equal(introspection.jti, claims.jti);
    assert.equal(introspection.token_type, 'DPoP');

    await oidc.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
    // The issuer's revocation view follows the bucket through a watch: give it a moment.
    let active = true;
    for (let i = 0; i < 300 && active; i++) {
      active = (await oidc.tokenIntrospection(config, tokens.access_token)).active;
      if (active) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(active, false);
  });

  test('oauth4webapi requests a token for a named child key and validates it as a resource server', async () => {
    const as = await oauth.processDiscoveryResponse(
      new URL(h.issuer),
      await oauth.discoveryRequest(new URL(h.issuer), {
        algorithm: 'oauth2',
        [oauth.allowInsecureRequests]: true,
      }),
    );
    const clientKey = await importJWK(await exportJWK(sys.keys.ci.privateKey), 'ES256');
    const child = await makeKey();
    const params = await h.exchangeParams({
      subject_token: await sys.idpToken('ci-runner'),
      aoa_child: 'jobs',
      aoa_environment: 'staging',
      scope: 'run:job',
      audience: 'https://jobs.internal',
      aoa_holder_jkt: child.jkt,
    });
    const response = await oauth.genericTokenEndpointRequest(
      as,
      { client_id: 'ci' },
      oauth.PrivateKeyJwt({ key: clientKey as oauth.CryptoKey, kid: 'ci-1' }),
      EXCHANGE,
      params,
      { [oauth.allowInsecureRequests]: true },
    );
    const tokens = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'ci' }, response);
    assert.equal(tokens.token_type, 'dpop');
    assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt: child.jkt });

    const resource = 'https://jobs.internal/run';
    const request = new Request(resource, {
      headers: {
        authorization: `DPoP ${tokens.access_token}`,
        dpop: await dpopProof(child, 'GET', resource, tokens.access_token),
      },
    });
    const claims = await oauth.validateJwtAccessToken(as, request, 'https://jobs.internal', {
      [oauth.allowInsecureRequests]: true,
      signingAlgorithms: ['EdDSA', 'ES256'],
    });
    assert.equal(claims.client_id, 'client:ci');
  });
});
