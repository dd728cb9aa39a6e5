import { CLIENT_ASSERTION_ALGORITHMS } from '@aoa/auth';
import { DPOP_ALGORITHMS, type HttpHandler, type KeySetMirror, sendJson, serviceRoutes } from '@aoa/core';
import type { IssuerMetrics } from '../metrics.js';
import { introspectionEndpoint } from './introspection-endpoint.js';
import { revocationEndpoint } from './revocation-endpoint.js';
import { type OAuthEndpointDeps, TOKEN_EXCHANGE_GRANT, tokenEndpoint } from './token-endpoint.js';

export interface IssuerHttpDeps {
  /** The issuer identifier, known once the listener is bound. */
  issuer(): string;
  /** The issuer identifier's path, for the path-inserted metadata location (RFC 8414 section 3.1). */
  issuerPath: string;
  grpcUrl: string;
  keys: KeySetMirror;
  metrics: IssuerMetrics;
  /** Reasons the issuer is not ready; empty when ready. */
  notReady(): string[];
  /** Whether the listener verifies client certificates (`AOA_ISSUER_TLS_CLIENT_CA_FILE`): RFC 8705 `tls_client_auth`. */
  clientCertificates: boolean;
  /** The OAuth endpoints (token, introspection, revocation); their URLs are derived here from the issuer. */
  oauth: Omit<OAuthEndpointDeps, 'urls' | 'metrics'>;
}

/** The extension parameters of the token endpoint, documented in the metadata (and the README). */
const EXCHANGE_PARAMETERS = {
  audience: 'Delegate audience (repeatable)',
  resource: 'Delegate audience (repeatable, RFC 8707)',
  scope: 'Delegate scopes, space-separated',
  actor_token:
    'the child: a JWT (typ aoa-actor+jwt, sub app:<child>, aud the issuer, jwk header) signed by the child key the token is bound to',
  aoa_child: 'the child app, when no actor_token names it',
  aoa_environment: 'the environment',
  aoa_holder_jkt: "the child's DPoP key thumbprint (RFC 7638), when no actor_token names it",
  aoa_ttl: 'requested lifetime in seconds (0 or absent: the longest policy allows)',
};

/**
 * The issuer's HTTP surface: RFC 8414 metadata (path-inserted when the issuer URL has a path), the
 * JWKS of every published key (active, standby, retiring), the RFC 8693 token endpoint, RFC 7662
 * introspection, health, readiness and metrics.
 */
export function issuerRoutes(deps: IssuerHttpDeps): Record<string, HttpHandler> {
  const issuerPath = deps.issuerPath.replace(/\/$/, '');
  const jwksPath = `${issuerPath}/jwks`;
  const at = (path: string) => new URL(`${issuerPath}${path}`, new URL(deps.issuer()).origin).href;
  const urls = () => ({ token: at('/token'), introspection: at('/introspect'), revocation: at('/revoke') });
  const oauth: OAuthEndpointDeps = { ...deps.oauth, urls, metrics: deps.metrics };
  // The token, introspection and revocation endpoints authenticate clients alike (authenticateFormClient).
  const authMethods = ['private_key_jwt', ...(deps.clientCertificates ? ['tls_client_auth'] : [])];
  const metadata = () => ({
    issuer: deps.issuer(),
    jwks_uri: at('/jwks'),
    token_endpoint: urls().token,
    introspection_endpoint: urls().introspection,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    introspection_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    revocation_endpoint: urls().revocation,
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    aoa_token_exchange_parameters: EXCHANGE_PARAMETERS,
    aoa_grpc_endpoint: deps.grpcUrl,
    aoa_delegate_method: '/aoa.v1.Issuer/Delegate',
  });
  const metadataHandler: HttpHandler = (_req, res) =>
    sendJson(res, 200, metadata(), { 'cache-control': 'public, max-age=300' });
  return {
    [`GET /.well-known/oauth-authorization-server${issuerPath}`]: metadataHandler,
    [`POST ${issuerPath}/token`]: tokenEndpoint(oauth),
    [`POST ${issuerPath}/introspect`]: introspectionEndpoint(oauth),
    [`POST ${issuerPath}/revoke`]: revocationEndpoint(oauth),
    [`GET ${jwksPath}`]: (_req, res) =>
      sendJson(res, 200, deps.keys.jwks(), { 'cache-control': 'public, max-age=60' }),
    ...serviceRoutes({ registry: deps.metrics.registry, notReady: deps.notReady }),
  };
}
