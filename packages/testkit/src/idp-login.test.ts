import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { FetchBrowser } from './fetch-browser.js';
import { startIdp } from './idp.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const RESOURCE = 'https://aoa.internal';

/** Signs in at the IdP from `start` and answers where it sent the browser back with its code. */
async function browse(start: string, login: { login: string; password: string }): Promise<URL> {
  const page = await new FetchBrowser().open(start, login, REDIRECT);
  if (!page.url.startsWith(REDIRECT)) throw new Error(`sign-in stopped at ${page.status}`);
  return new URL(page.url);
}

describe('test IdP: people sign in with the authorization code grant', () => {
  it('a known login gets a code, and its exchange an at+jwt for the resource with its groups', async () => {
    await using idp = await startIdp({
      clients: [{ clientId: 'console', clientSecret: 's3cret', redirectUris: [REDIRECT] }],
      users: [{ login: 'alice', password: 'pw-alice', groups: ['platform-admins'] }],
    });
    const config = await client.discovery(new URL(idp.issuer), 'console', 's3cret', undefined, {
      execute: [client.allowInsecureRequests],
    });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorize = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      resource: RESOURCE,
      state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const back = await browse(authorize.href, { login: 'alice', password: 'pw-alice' });
    const tokens = await client.authorizationCodeGrant(
      config,
      back,
      { pkceCodeVerifier: verifier, expectedState: state },
      { resource: RESOURCE },
    );
    const { payload, protectedHeader } = await jwtVerify(
      tokens.access_token,
      createRemoteJWKSet(new URL(idp.jwksUri)),
      { issuer: idp.issuer, audience: RESOURCE },
    );
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.groups, ['platform-admins']);
    assert.equal(tokens.claims()?.sub, 'alice');
  });

  it('a wrong password is refused on the form, and no code is issued', async () => {
    await using idp = await startIdp({
      clients: [{ clientId: 'console', clientSecret: 's3cret', redirectUris: [REDIRECT] }],
      users: [{ login: 'alice', password: 'pw-alice' }],
    });
    const config = await client.discovery(new URL(idp.issuer), 'console', 's3cret', undefined, {
      execute: [client.allowInsecureRequests],
    });
    const authorize = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    await assert.rejects(browse(authorize.href, { login: 'alice', password: 'guess' }), (error: Error) => {
      assert.match(error.message, /sign-in stopped at 401/);
      return true;
    });
  });
});
