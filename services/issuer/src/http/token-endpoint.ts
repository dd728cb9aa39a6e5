import type { IncomingMessage } from 'node:http';
import { isWorkloadAssertion } from '@aoa/auth';
import {
  type HttpHandler,
  type Logger,
  requestCertificateUris,
  sendJson,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  verifyDpopProof,
} from '@aoa/core';
import type { ClientConfig } from '@aoa/policy';
import type { RevocationWriteContext } from '@aoa/revocation';
import { type CallerProof, type DelegateResult, delegate, type IssuerContext } from '../domain/delegate.js';
import type { RawDelegateRequest } from '../domain/request.js';
import type { IssuerMetrics } from '../metrics.js';
import { type Actor, verifyActorToken } from './actor-token.js';
import { authenticateFormClient, invalidClient, JWT_BEARER_ASSERTION } from './client-auth.js';
import type { DpopNonces } from './dpop-nonce.js';
import { tokenEndpointError } from './oauth-errors.js';
import { OAuthError, type OAuthForm, readOAuthForm, sendOAuthError } from './oauth-form.js';
import type { RateLimiter } from './rate-limit.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ISSUABLE_TOKEN_TYPES = [TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT];

/** What the OAuth endpoints need; the domain context appears once the issuer has finished starting. */
export interface OAuthEndpointDeps {
  context(): IssuerContext | undefined;
  /** Where RFC 7009 revocations are written; appears with the context. */
  revocationWriter(): RevocationWriteContext | undefined;
  /** The published endpoint URLs: DPoP `htu` is compared with these. */
  urls(): { token: string; introspection: string; revocation: string };
  metrics: IssuerMetrics;
  nonces: DpopNonces;
  perClient: RateLimiter;
  perSource: RateLimiter;
  log: Logger;
}

/**
 * RFC 8693 token exchange at `POST /token`, over the same `delegate()` as gRPC. The parameters map to
 * Delegate fields: `audience` and `resource` (both repeatable) are the audience, `scope` the scopes,
 * `aoa_ttl` the lifetime; the child is named by a child-signed `actor_token` (the token is bound to
 * its key) or by `aoa_child`, `aoa_environment` and `aoa_holder_jkt`. A parent authenticates with
 * `private_key_jwt`; its own DPoP proof binds the token only when nothing else names a key. A child
 * that sub-delegates sends its key-bound aoa `subject_token` with a DPoP proof (`ath`) by that key;
 * its token is bound only through `actor_token` or `aoa_holder_jkt`.
 */
export function tokenEndpoint(deps: OAuthEndpointDeps): HttpHandler {
  return async (req, res) => {
    const stop = deps.metrics.tokenSeconds.startTimer();
    try {
      const body = await exchange(deps, req);
      deps.metrics.tokenRequests.inc({ outcome: 'issued', error: '' });
      sendJson(res, 200, body, { pragma: 'no-cache', 'dpop-nonce': deps.nonces.current() });
    } catch (error) {
      const answer = tokenEndpointError(error);
      deps.metrics.tokenRequests.inc({ outcome: 'refused', error: answer.error });
      if (answer.status >= 500) deps.log.error({ err: error }, 'token endpoint failed');
      else deps.log.info({ error: answer.error, reason: answer.description }, 'token request refused');
      sendOAuthError(res, answer);
    } finally {
      stop();
    }
  };
}

async function exchange(deps: OAuthEndpointDeps, req: IncomingMessage): Promise<Record<string, unknown>> {
  limit(deps, deps.perSource, `source:${req.socket.remoteAddress ?? 'unknown'}`, 'source');
  const ctx = deps.context();
  if (!ctx) throw new OAuthError(503, 'temporarily_unavailable', 'issuer starting', { 'retry-after': '1' });
  const form = await readOAuthForm(req, ['audience', 'resource']);
  const grantType = form.one('grant_type');
  if (!grantType) throw new OAuthError(400, 'invalid_request', 'grant_type: required');
  if (grantType !== TOKEN_EXCHANGE_GRANT)
    throw new OAuthError(400, 'unsupported_grant_type', `only ${TOKEN_EXCHANGE_GRANT} is supported`);
  const dpop = dpopHeader(req);
  const workload = workloadAssertion(ctx, form);
  if (workload) return federatedExchange(deps, ctx, form, workload, dpop);
  const client = await authenticateFormClient(ctx, form, requestCertificateUris(req));
  if (!client && !dpop)
    throw invalidClient(
      "client authentication required: private_key_jwt, tls_client_auth, or a DPoP proof by the subject token's key",
    );
  if (client) limit(deps, deps.perClient, `client:${client.id}`, 'client');
  if (client?.dpopBoundAccessTokens && !dpop)
    throw new OAuthError(400, 'invalid_dpop_proof', `client ${client.id} must send a DPoP proof`);
  if (dpop) deps.nonces.require(dpop);
  const raw = exchangeRequest(form);
  const actor = await actorOf(ctx, form);
  const holderJkt = await holderOf(ctx, deps, form, actor, client, dpop);
  const proof: CallerProof = client
    ? { clientAssertion: undefined, dpop: undefined, authenticatedClient: client }
    : {
        clientAssertion: undefined,
        dpop: dpop ? { proof: dpop, htm: 'POST', htu: deps.urls().token } : undefined,
      };
  const result = await delegate(
    ctx,
    {
      ...raw,
      child: actor?.child ?? raw.child,
      environment: raw.environment || actor?.env || '',
      holderJkt,
    },
    proof,
  );
  return tokenResponse(ctx, result);
}

/**
 * A federated client's exchange: its workload token is the client assertion and the subject token,
 * and the DPoP proof (with the server's nonce) is of the key the new token is bound to.
 */
async function federatedExchange(
  deps: OAuthEndpointDeps,
  ctx: IssuerContext,
  form: OAuthForm,
  assertion: string,
  dpop: string | undefined,
): Promise<Record<string, unknown>> {
  if (!dpop) throw new OAuthError(400, 'invalid_dpop_proof', 'a federated client must send a DPoP proof');
  deps.nonces.require(dpop);
  const result = await delegate(ctx, exchangeRequest(form), {
    clientAssertion: assertion,
    dpop: { proof: dpop, htm: 'POST', htu: deps.urls().token },
    clientId: form.one('client_id'),
  });
  return tokenResponse(ctx, result);
}

/** The workload token a federated client authenticates with, when the form's assertion is one. */
function workloadAssertion(ctx: IssuerContext, form: OAuthForm): string | undefined {
  const assertion = form.one('client_assertion');
  if (!assertion || form.one('client_assertion_type') !== JWT_BEARER_ASSERTION) return undefined;
  return isWorkloadAssertion(ctx.policy(), assertion) ? assertion : undefined;
}

/** The RFC 8693 section 2.2.1 answer for an issued token. */
function tokenResponse(ctx: IssuerContext, result: DelegateResult): Record<string, unknown> {
  return {
    access_token: result.accessToken,
    issued_token_type: result.issuedTokenType,
    token_type: result.tokenType,
    expires_in: Math.max(0, result.expiresAt - Math.floor(ctx.clock.nowMs() / 1000)),
    scope: result.scopes.join(' '),
  };
}

/** The form's RFC 8693 and `aoa_*` parameters as a Delegate request (the child and key come later). */
function exchangeRequest(form: OAuthForm): RawDelegateRequest {
  const subjectToken = form.one('subject_token');
  const subjectTokenType = form.one('subject_token_type');
  if (!subjectToken) throw new OAuthError(400, 'invalid_request', 'subject_token: required');
  if (!subjectTokenType) throw new OAuthError(400, 'invalid_request', 'subject_token_type: required');
  const requested = form.one('requested_token_type');
  if (requested !== undefined && !ISSUABLE_TOKEN_TYPES.includes(requested))
    throw new OAuthError(400, 'invalid_request', 'requested_token_type: only access tokens are issued');
  const resources = form.all('resource');
  for (const resource of resources) {
    if (!URL.canParse(resource) || resource.includes('#'))
      throw new OAuthError(400, 'invalid_target', 'resource: must be an absolute URI without a fragment');
  }
  const ttl = form.one('aoa_ttl') ?? '0';
  if (!/^\d{1,7}$/.test(ttl)) throw new OAuthError(400, 'invalid_request', 'aoa_ttl: must be whole seconds');
  return {
    subjectToken,
    subjectTokenType,
    child: form.one('aoa_child') ?? '',
    environment: form.one('aoa_environment') ?? '',
    scopes: (form.one('scope') ?? '').split(' ').filter(Boolean),
    audience: [...form.all('audience'), ...resources],
    ttlSeconds: Number(ttl),
    holderJkt: form.one('aoa_holder_jkt') ?? '',
  };
}

async function actorOf(ctx: IssuerContext, form: OAuthForm): Promise<Actor | undefined> {
  const token = form.one('actor_token');
  const type = form.one('actor_token_type');
  if (!token && !type) return undefined;
  if (!token) throw new OAuthError(400, 'invalid_request', 'actor_token_type sent without actor_token');
  if (!type) throw new OAuthError(400, 'invalid_request', 'actor_token: requires actor_token_type');
  const actor = await verifyActorToken(ctx, token, type);
  const named = form.one('aoa_child');
  if (named !== undefined && named !== actor.child)
    throw new OAuthError(400, 'invalid_request', 'aoa_child does not match the actor_token');
  const env = form.one('aoa_environment');
  if (env !== undefined && actor.env !== undefined && env !== actor.env)
    throw new OAuthError(400, 'invalid_request', 'aoa_environment does not match the actor_token');
  return actor;
}

/**
 * The key the new token is bound to: the actor token's, else `aoa_holder_jkt`, else (for a parent
 * acting alone) its own DPoP proof key. A child's proof proves the subject token, never binds.
 */
async function holderOf(
  ctx: IssuerContext,
  deps: OAuthEndpointDeps,
  form: OAuthForm,
  actor: Actor | undefined,
  client: ClientConfig | undefined,
  dpop: string | undefined,
): Promise<string> {
  const named = form.one('aoa_holder_jkt');
  if (actor && named !== undefined && named !== actor.jkt)
    throw new OAuthError(400, 'invalid_request', 'aoa_holder_jkt does not match the actor_token key');
  if (!client || !dpop) return actor?.jkt ?? named ?? '';
  const proofJkt = await verifyDpopProof({
    proof: dpop,
    htm: 'POST',
    htu: deps.urls().token,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  return actor?.jkt ?? named ?? proofJkt;
}

/** The one `DPoP` header; node joins repeated headers with commas, which no compact JWS contains. */
export function dpopHeader(req: IncomingMessage): string | undefined {
  const value = req.headers.dpop;
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value) || value.includes(','))
    throw new OAuthError(400, 'invalid_dpop_proof', 'send exactly one DPoP header');
  return value;
}

function limit(deps: OAuthEndpointDeps, limiter: RateLimiter, key: string, scope: string): void {
  const wait = limiter.take(key);
  if (wait === 0) return;
  deps.metrics.tokenRateLimited.inc({ scope });
  throw new OAuthError(429, 'slow_down', `too many token requests from this ${scope}`, {
    'retry-after': String(wait),
  });
}
