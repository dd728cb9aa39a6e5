import { AppError, type HttpHandler, requestCertificateUris } from '@aoa/core';
import { authorizeRevoke, type RevocationWriteContext, writeRevocation } from '@aoa/revocation';
import { decodeProtectedHeader } from 'jose';
import type { IssuerContext } from '../domain/delegate.js';
import { authenticateFormClient, invalidClient } from './client-auth.js';
import { clientEndpointError } from './oauth-errors.js';
import { OAuthError, readOAuthForm, sendOAuthError } from './oauth-form.js';
import type { OAuthEndpointDeps } from './token-endpoint.js';

/**
 * RFC 7009 revocation at `POST /revoke`, written through the same `writeRevocation()` as the revoker
 * (KV record, notices, audit outbox). The caller authenticates with `private_key_jwt` (otherwise
 * `401 invalid_client`). A token that is not a valid, unexpired aoa token is answered 200 with no
 * effect (section 2.2: the client cannot act on the difference). Who may revoke is contract section 3,
 * applied by the revoker's own rule to what the signed token shows: an admin client anything, another
 * client a token whose `client_id` is `client:<id>` (a token it requested). Ancestors' requesters
 * are not in a token (its lineage names jtis and apps, not clients), so a client revoking a token
 * minted further down its chain uses gRPC `Revoke` with the tokens it owns; here it is refused with
 * `400 unauthorized_client`. `token_type_hint` is accepted and ignored: aoa has only access tokens.
 */
export function revocationEndpoint(deps: OAuthEndpointDeps): HttpHandler {
  return async (req, res) => {
    try {
      const ctx = deps.context();
      const writer = deps.revocationWriter();
      if (!ctx || !writer)
        throw new OAuthError(503, 'temporarily_unavailable', 'issuer starting', { 'retry-after': '1' });
      const form = await readOAuthForm(req, []);
      const client = await authenticateFormClient(ctx, form, requestCertificateUris(req));
      if (!client) throw invalidClient('client authentication required (private_key_jwt or tls_client_auth)');
      const token = form.one('token');
      if (!token) throw new OAuthError(400, 'invalid_request', 'token: required');
      // Read so that a repeated hint is refused like any repeated parameter; its value changes nothing.
      form.one('token_type_hint');
      const outcome = await revokeToken(ctx, writer, token, { id: client.id, admin: client.admin });
      deps.metrics.revocations.inc({ outcome });
      if (outcome === 'revoked')
        deps.log.info({ client: client.id }, 'token revoked through the revocation endpoint');
      res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0' });
      res.end();
    } catch (error) {
      const answer = clientEndpointError(error);
      deps.metrics.revocations.inc({ outcome: answer.error });
      if (answer.status >= 500) deps.log.error({ err: error }, 'revocation endpoint failed');
      sendOAuthError(res, answer);
    }
  };
}

/** Verifies the token and, when the caller may, revokes its jti; an invalid token is `ignored`. */
async function revokeToken(
  ctx: IssuerContext,
  writer: RevocationWriteContext,
  token: string,
  client: { id: string; admin: boolean },
): Promise<'revoked' | 'ignored'> {
  let verified: Awaited<ReturnType<IssuerContext['subjects']['verify']>>;
  try {
    verified = await ctx.subjects.verify(token, '', ctx.policy());
  } catch (error) {
    if (error instanceof AppError && error.code === 'unavailable') throw error;
    return 'ignored';
  }
  if (verified.kind !== 'aoa') return 'ignored';
  const caller = { kind: 'client' as const, ...client };
  const target = { kind: 'jti' as const, jti: verified.claims.jti };
  const presented = { claims: verified.claims, kid: verified.kid, alg: algorithmOf(token) };
  const place = authorizeRevoke(caller, target, [presented]);
  await writeRevocation(writer, {
    target,
    reason: 'revoked through the RFC 7009 endpoint',
    by: `client:${client.id}`,
    place,
  });
  return 'revoked';
}

const algorithmOf = (token: string): string => decodeProtectedHeader(token).alg ?? '';
