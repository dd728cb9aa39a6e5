import { AppError, errorInfoOf, REFUSAL_REASONS } from '@aoa/core';
import { OAuthError } from './oauth-form.js';

/**
 * Maps what the Delegate domain throws to RFC 6749 / 8693 / 9449 token endpoint errors, in one place.
 * A refusal's registered code comes from its stable reason (`REFUSAL_REASONS`: a refused audience is
 * `invalid_target`, a refused scope `invalid_scope`, a revoked, expired or exhausted presented token
 * `invalid_grant`, ...); its `error_description` starts with that reason (`SCOPE_NOT_IN_PARENT: ...`),
 * and the body carries it with the rule or constraint as `aoa_reason`, `aoa_rule`, `aoa_constraint`.
 * Internal failures are `server_error` with no detail.
 *
 * @example
 * catch (error) { sendOAuthError(res, tokenEndpointError(error)); }
 */
export function tokenEndpointError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  if (!(error instanceof AppError)) return new OAuthError(500, 'server_error');
  const registered = registeredError(error);
  if (registered.error === 'server_error') return new OAuthError(500, 'server_error');
  const info = errorInfoOf(error);
  const extra: Record<string, string> = { aoa_reason: info.reason };
  for (const [key, value] of Object.entries(info.metadata)) extra[`aoa_${key}`] = value;
  const retry: Record<string, string> =
    registered.status === 429 || registered.status === 503 ? { 'retry-after': '1' } : {};
  return new OAuthError(
    registered.status,
    registered.error,
    `${info.reason}: ${error.message}`,
    retry,
    extra,
  );
}

function registeredError(error: AppError): { status: number; error: string } {
  switch (error.code) {
    case 'invalid_argument':
      return { status: 400, error: 'invalid_request' };
    case 'unauthenticated':
      // The client is authenticated before the domain runs; what remains is the subject token or
      // the sub-delegating child's DPoP proof.
      if (error.message.startsWith('DPoP proof')) return { status: 400, error: 'invalid_dpop_proof' };
      if (error.reason && REFUSAL_REASONS[error.reason].oauth === 'invalid_client') {
        return { status: 401, error: 'invalid_client' };
      }
      return { status: 400, error: 'invalid_request' };
    case 'permission_denied':
      return {
        status: 400,
        error: error.reason ? REFUSAL_REASONS[error.reason].oauth : 'unauthorized_client',
      };
    case 'resource_exhausted':
      return { status: 429, error: 'slow_down' };
    case 'unavailable':
      return { status: 503, error: 'temporarily_unavailable' };
    case 'not_found':
    case 'already_exists':
    case 'failed_precondition':
    case 'internal':
      return { status: 500, error: 'server_error' };
  }
}

/**
 * Errors of the endpoints a client calls about a token it holds (RFC 7662 introspection, RFC 7009
 * revocation): a failed client authentication is `401 invalid_client`, a refusal `unauthorized_client`.
 */
export function clientEndpointError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  if (!(error instanceof AppError)) return new OAuthError(500, 'server_error');
  switch (error.code) {
    case 'unauthenticated':
      return new OAuthError(401, 'invalid_client', error.message);
    case 'invalid_argument':
      return new OAuthError(400, 'invalid_request', error.message);
    case 'permission_denied':
      return new OAuthError(400, 'unauthorized_client', error.message);
    case 'unavailable':
      return new OAuthError(503, 'temporarily_unavailable', error.message, { 'retry-after': '1' });
    default:
      return new OAuthError(500, 'server_error');
  }
}
