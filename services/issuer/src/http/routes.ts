import { DPOP_ALGORITHMS, type HttpHandler, type KeySetMirror, sendJson } from '@aoa/core';
import { CLIENT_ASSERTION_ALGORITHMS } from '../domain/client-assertion.js';
import type { IssuerMetrics } from '../metrics.js';

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
}

/**
 * The issuer's HTTP surface: RFC 8414 metadata (path-inserted when the issuer URL has a path), the
 * JWKS of every published key (active, standby, retiring), health, readiness and metrics.
 */
export function issuerRoutes(deps: IssuerHttpDeps): Record<string, HttpHandler> {
  const issuerPath = deps.issuerPath.replace(/\/$/, '');
  const jwksPath = `${issuerPath}/jwks`;
  const metadata = () => ({
    issuer: deps.issuer(),
    jwks_uri: new URL(jwksPath, new URL(deps.issuer()).origin).href,
    grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    aoa_grpc_endpoint: deps.grpcUrl,
    aoa_delegate_method: '/aoa.v1.Issuer/Delegate',
  });
  const metadataHandler: HttpHandler = (_req, res) =>
    sendJson(res, 200, metadata(), { 'cache-control': 'public, max-age=300' });
  return {
    [`GET /.well-known/oauth-authorization-server${issuerPath}`]: metadataHandler,
    [`GET ${jwksPath}`]: (_req, res) =>
      sendJson(res, 200, deps.keys.jwks(), { 'cache-control': 'public, max-age=60' }),
    'GET /healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    'GET /readyz': (_req, res) => {
      const problems = deps.notReady();
      sendJson(res, problems.length === 0 ? 200 : 503, { ready: problems.length === 0, problems });
    },
    'GET /metrics': async (_req, res) => {
      const body = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      res.end(body);
    },
  };
}
