import { type AoaClaims, type HttpHandler, requestCertificateUris, sendJson } from '@aoa/core';
import { introspect } from '../domain/introspect.js';
import { authenticateFormClient, invalidClient } from './client-auth.js';
import { clientEndpointError } from './oauth-errors.js';
import { OAuthError, readOAuthForm, sendOAuthError } from './oauth-form.js';
import type { OAuthEndpointDeps } from './token-endpoint.js';

/**
 * RFC 7662 introspection at `POST /introspect` over the same `introspect()` as gRPC. The caller
 * authenticates with `private_key_jwt` or `tls_client_auth` (otherwise `401 invalid_client`); a
 * token that is revoked, expired, unknown, or neither requested by the caller nor visible to an admin
 * is exactly `{"active": false}`.
 */
export function introspectionEndpoint(deps: OAuthEndpointDeps): HttpHandler {
  return async (req, res) => {
    try {
      const ctx = deps.context();
      if (!ctx) throw new OAuthError(503, 'temporarily_unavailable', 'issuer starting');
      const form = await readOAuthForm(req, []);
      const token = form.one('token');
      const client = await authenticateFormClient(ctx, form, requestCertificateUris(req));
      if (!client) throw invalidClient('client authentication required (private_key_jwt or tls_client_auth)');
      if (!token) throw new OAuthError(400, 'invalid_request', 'token: required');
      const result = await introspect(ctx, token, {
        clientAssertion: undefined,
        dpop: undefined,
        authenticatedClient: client,
      });
      deps.metrics.introspections.inc({ active: String(result.active) });
      sendJson(res, 200, result.active ? activeBody(result.claims) : { active: false }, {
        pragma: 'no-cache',
      });
    } catch (error) {
      sendOAuthError(res, clientEndpointError(error));
    }
  };
}

/** RFC 7662 section 2.2 members, plus the aoa claims a resource server may want. */
function activeBody(claims: AoaClaims): Record<string, unknown> {
  return {
    active: true,
    iss: claims.iss,
    sub: claims.sub,
    client_id: claims.client_id,
    scope: claims.scope,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    nbf: claims.nbf,
    jti: claims.jti,
    token_type: claims.cnf ? 'DPoP' : 'Bearer',
    ...(claims.cnf ? { cnf: { jkt: claims.cnf.jkt } } : {}),
    act: claims.act,
    env: claims.env,
    aoa_lineage: claims.aoa_lineage,
    ...(claims.aoa_grant ? { aoa_grant: claims.aoa_grant } : {}),
  };
}
