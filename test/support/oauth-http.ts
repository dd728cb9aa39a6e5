import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { exportJWK, importJWK, SignJWT } from 'jose';
import type * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './oauth.js';
import type { TestSystem } from './system.js';

export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT = 'urn:ietf:params:oauth:token-type:jwt';

export type ClientName = 'argocd' | 'ci' | 'ops' | 'edge';

/** An HTTP answer with its JSON body (`{}` for an empty one). */
export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** A form POST as an OAuth client sends it. */
export async function post(
  url: string,
  params: Array<[string, string]> | Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

/**
 * A form POST over HTTPS trusting `tls.ca`, presenting the client certificate `tls.cert`/`tls.key`
 * when given (node:https: fetch takes no client certificate).
 */
export function postOverTls(
  url: string,
  params: Record<string, string>,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer },
  headers: Record<string, string> = {},
): Promise<Omit<Answer, 'headers'>> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ...tls,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(new URLSearchParams(params).toString());
  });
}

/** The OAuth endpoints of a running test system and the requests the tests build against them. */
export interface OAuthHarness {
  issuer: string;
  tokenUrl: string;
  introspectUrl: string;
  revokeUrl: string;
  /** Client authentication for a registered client with a fresh assertion. */
  auth(
    client?: ClientName,
    overrides?: Parameters<typeof clientAssertion>[3],
  ): Promise<Record<string, string>>;
  /** A token-exchange form for argocd-sa as parent of `dashboards` in prod; `extra` overrides. */
  exchangeParams(extra?: Record<string, string>): Promise<Record<string, string>>;
  /** A current server nonce, obtained the way a client does: from a use_dpop_nonce challenge. */
  serverNonce(): Promise<string>;
  /** An actor token: the child names itself and proves its key. */
  actorToken(key: TestKey, child: string, claims?: Record<string, unknown>): Promise<string>;
  /** An access token issued over HTTP to `client` for a child key (no DPoP at the endpoint). */
  issueToken(client?: 'argocd' | 'ops'): Promise<string>;
  /** openid-client configured by discovery for argocd with private_key_jwt. */
  openidClient(): Promise<oidc.Configuration>;
}

export function oauthHarness(sys: TestSystem): OAuthHarness {
  const issuer = sys.issuer.issuer;
  const tokenUrl = `${issuer}/token`;
  const keyOf = (client: ClientName): TestKey =>
    ({ argocd: sys.keys.argocd, ci: sys.keys.ci, ops: sys.keys.admin, edge: sys.keys.edge })[client];
  const harness: OAuthHarness = {
    issuer,
    tokenUrl,
    introspectUrl: `${issuer}/introspect`,
    revokeUrl: `${issuer}/revoke`,
    auth: async (client = 'argocd', overrides = {}) => ({
      client_assertion_type: JWT_BEARER,
      client_assertion: await clientAssertion(client, keyOf(client), issuer, overrides),
    }),
    exchangeParams: async (extra = {}) => ({
      grant_type: EXCHANGE,
      subject_token: await sys.idpToken('argocd-sa'),
      subject_token_type: ACCESS_TOKEN,
      aoa_child: 'dashboards',
      aoa_environment: 'prod',
      scope: 'read:metrics',
      audience: 'https://dashboards.internal',
      ...extra,
    }),
    serverNonce: async () => {
      const answer = await post(
        tokenUrl,
        { ...(await harness.exchangeParams()), ...(await harness.auth()) },
        { dpop: await dpopProof(await makeKey(), 'POST', tokenUrl) },
      );
      assert.equal(answer.body.error, 'use_dpop_nonce');
      const nonce = answer.headers.get('dpop-nonce');
      assert.ok(nonce);
      return nonce;
    },
    actorToken: (key, child, claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        sub: `app:${child}`,
        aud: issuer,
        iat: now,
        exp: now + 60,
        jti: randomBytes(16).toString('base64url'),
        ...claims,
      })
        .setProtectedHeader({ alg: key.alg, typ: 'aoa-actor+jwt', jwk: key.publicJwk })
        .sign(key.privateKey);
    },
    issueToken: async (client = 'argocd') => {
      const subject: Record<string, string> =
        client === 'ops' ? { subject_token: await sys.idpToken('sre-bot') } : {};
      const answer = await post(tokenUrl, {
        ...(await harness.exchangeParams({ aoa_holder_jkt: (await makeKey()).jkt, ...subject })),
        ...(await harness.auth(client)),
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body.access_token as string;
    },
    openidClient: async () => {
      const key = await importJWK(await exportJWK(sys.keys.argocd.privateKey), 'EdDSA');
      return oidc.discovery(
        new URL(issuer),
        'argocd',
        { token_endpoint_auth_method: 'private_key_jwt' },
        oidc.PrivateKeyJwt({ key: key as oauth.CryptoKey, kid: 'argocd-1' }),
        { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] },
      );
    },
  };
  return harness;
}
