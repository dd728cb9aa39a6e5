// What every worked example does to get a child app's credential from aoa, in plain Node.js 20 with no
// dependencies (node:crypto signs the DPoP proofs), so a CI job can run it without `npm install`:
// discover the token endpoint, make a DPoP key, exchange a token (RFC 8693) with a DPoP proof (RFC 9449)
// carrying the server's nonce, and call a child app with the key-bound credential.
//
// Nothing here writes a token to stdout, stderr or an error message: refusals carry aoa's stable reason
// (`aoa_reason`), the rule or constraint it names, and the public description only.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** A refusal by aoa's token endpoint or by a child app, without any token in it. */
export class ExchangeError extends Error {
  name = 'ExchangeError';

  /** @param {{ status: number, error: string, reason?: string, rule?: string, constraint?: string, description?: string }} answer */
  constructor(answer) {
    const named = answer.rule ? ` (rule ${answer.rule})` : answer.constraint ? ` (${answer.constraint})` : '';
    super(`${answer.status} ${answer.error}${named}: ${answer.description ?? 'no description'}`);
    this.status = answer.status;
    this.error = answer.error;
    this.reason = answer.reason;
    this.rule = answer.rule;
    this.constraint = answer.constraint;
  }
}

const base64url = (value) => Buffer.from(value).toString('base64url');

/** A fresh P-256 key for DPoP, with its public JWK and RFC 7638 thumbprint (`jkt`). */
export function generateDpopKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { crv, kty, x, y } = publicKey.export({ format: 'jwk' });
  // RFC 7638: the required members in lexicographic order, no whitespace.
  const jkt = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return { privateKey, publicJwk: { crv, kty, x, y }, jkt };
}

/** An RFC 9449 DPoP proof by `key` for `htm htu`; `accessToken` adds `ath`, `nonce` the server's nonce. */
export function dpopProof(key, htm, htu, { accessToken, nonce } = {}) {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk };
  const payload = {
    jti: randomBytes(16).toString('base64url'),
    htm,
    htu,
    iat: Math.floor(Date.now() / 1000),
    ...(nonce ? { nonce } : {}),
    ...(accessToken ? { ath: createHash('sha256').update(accessToken).digest('base64url') } : {}),
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** The token endpoint from the issuer's RFC 8414 metadata. */
export async function tokenEndpointOf(issuer) {
  const metadataUrl = new URL('/.well-known/oauth-authorization-server', issuer);
  const response = await fetch(metadataUrl);
  if (!response.ok) throw new Error(`${metadataUrl}: HTTP ${response.status}`);
  const { token_endpoint: tokenEndpoint } = await response.json();
  if (typeof tokenEndpoint !== 'string') throw new Error(`${metadataUrl}: no token_endpoint`);
  return tokenEndpoint;
}

/**
 * POSTs a token-exchange form with a DPoP proof by `key` (`accessToken`: the subject token the proof
 * must be bound to by `ath`, when a child sub-delegates). The first answer to a proof without a nonce
 * is `use_dpop_nonce`: the request is sent again with the nonce the server gave.
 */
export async function exchangeToken(tokenEndpoint, form, key, { accessToken } = {}) {
  let nonce;
  for (let attempt = 0; attempt < 2; attempt++) {
    const response = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        dpop: dpopProof(key, 'POST', tokenEndpoint, { accessToken, nonce }),
      },
      body: new URLSearchParams(form),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) return body;
    const fresh = response.headers.get('dpop-nonce');
    if (body.error === 'use_dpop_nonce' && fresh && attempt === 0) {
      nonce = fresh;
      continue;
    }
    throw new ExchangeError({
      status: response.status,
      error: body.error ?? 'error',
      reason: body.aoa_reason,
      rule: body.aoa_rule,
      constraint: body.aoa_constraint,
      description: body.error_description,
    });
  }
  throw new Error('unreachable: the nonce retry either returned or threw');
}

/**
 * The form of a federated client: its workload token (a GitHub Actions job's, a pod's, a Terraform
 * run's) is both the client assertion and the subject token; the DPoP key it proves becomes the key the
 * credential is bound to.
 */
export function workloadExchangeForm({ workloadToken, child, environment, scopes, audience, clientId }) {
  return {
    grant_type: TOKEN_EXCHANGE,
    client_assertion_type: JWT_BEARER,
    client_assertion: workloadToken,
    subject_token: workloadToken,
    subject_token_type: TOKEN_TYPE_JWT,
    aoa_child: child,
    aoa_environment: environment,
    scope: scopes.join(' '),
    ...(audience ? { audience } : {}),
    ...(clientId ? { client_id: clientId } : {}),
  };
}

/** Calls a child app with a DPoP-bound credential (RFC 9449 section 7); resolves its status and JSON body. */
export async function callChildApp(url, accessToken, key, method = 'POST') {
  const htu = new URL(url);
  htu.search = '';
  htu.hash = '';
  const response = await fetch(url, {
    method,
    headers: {
      authorization: `DPoP ${accessToken}`,
      dpop: dpopProof(key, method, htu.href, { accessToken }),
    },
  });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

/** A token's payload, decoded without verification: for printing what was issued. */
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

/** The claims worth printing of an issued credential (never the token itself). */
export function summary(issued) {
  const { sub, client_id, act, aud, env, scope, aoa_rule, cnf, jti, exp } = claimsOf(issued.access_token);
  return { jti, sub, client_id, act, aud, env, scope, aoa_rule, cnf, exp, token_type: issued.token_type };
}

/** The value of a required environment variable, or exit 2 naming it. */
export function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`${name} is required\n`);
    process.exit(2);
  }
  return value;
}

/** Runs `main`, printing a refusal (exit 3) or a failure (exit 1) without any token material. */
/**
 * The whole exchange a CI job or a Terraform run makes: reads `AOA_ISSUER` and the workload token from
 * the environment variable `tokenVariable`, exchanges it for a credential of `child` (overridden by
 * `AOA_CHILD`, `AOA_ENV`, `AOA_SCOPE`) bound to a fresh DPoP key, calls `AOA_CHILD_URL` with it when
 * set, and prints the credential's claims, never a token.
 */
export function runWorkloadExchange({ tokenVariable, child, environment, scopes }) {
  run(async () => {
    const tokenEndpoint = await tokenEndpointOf(required('AOA_ISSUER'));
    const key = generateDpopKey();
    const form = workloadExchangeForm({
      workloadToken: required(tokenVariable),
      child: process.env.AOA_CHILD ?? child,
      environment: process.env.AOA_ENV ?? environment,
      scopes: process.env.AOA_SCOPE ? process.env.AOA_SCOPE.split(' ') : scopes,
    });
    const issued = await exchangeToken(tokenEndpoint, form, key);
    const childUrl = process.env.AOA_CHILD_URL;
    const called = childUrl ? await callChildApp(childUrl, issued.access_token, key) : undefined;
    return { credential: summary(issued), ...(called ? { child: called } : {}) };
  });
}

export function run(main) {
  main().then(
    (result) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`),
    (error) => {
      const refused = error instanceof ExchangeError;
      process.stderr.write(`${refused ? 'refused' : 'failed'}: ${error.message}\n`);
      process.exitCode = refused ? 3 : 1;
    },
  );
}
