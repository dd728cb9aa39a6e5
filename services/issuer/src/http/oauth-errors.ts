import { AppError } from '@aoa/core';
import { OAuthError } from './oauth-form.js';

/**
 * Maps what the Delegate domain throws to RFC 6749 / 8693 / 9449 token endpoint errors, in one place.
 * Policy refusals carry only a reason text, so the registered code is chosen from what the reason is
 * about: a refused audience is `invalid_target`, a refused scope `invalid_scope`, a revoked, expired
 * or exhausted presented token `invalid_grant`, a malformed request `invalid_request`, and anything
 * else a client may not do `unauthorized_client`. Internal failures are `server_error` with no detail.
 *
 * @example
 * catch (error) { sendOAuthError(res, tokenEndpointError(error)); }
 */
export function tokenEndpointError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  if (!(error instanceof AppError)) return new OAuthError(500, 'server_error');
  switch (error.code) {
    case 'invalid_argument':
      return new OAuthError(400, 'invalid_request', error.message);
    case 'unauthenticated':
      // The client is authenticated before the domain runs; what remains is the subject token or
      // the sub-delegating child's DPoP proof.
      return error.message.startsWith('DPoP proof')
        ? new OAuthError(400, 'invalid_dpop_proof', error.message)
        : new OAuthError(400, 'invalid_request', error.message);
    case 'permission_denied':
      return new OAuthError(400, refusalCode(error.message), error.message);
    case 'resource_exhausted':
      return new OAuthError(429, 'slow_down', error.message, { 'retry-after': '1' });
    case 'unavailable':
      return new OAuthError(503, 'temporarily_unavailable', error.message, { 'retry-after': '1' });
    case 'not_found':
    case 'already_exists':
    case 'failed_precondition':
    case 'internal':
      return new OAuthError(500, 'server_error');
  }
}

function refusalCode(reason: string): string {
  if (/\baudiences?\b/.test(reason)) return 'invalid_target';
  if (/\bscopes?\b/.test(reason)) return 'invalid_scope';
  if (/revoked|expired|may not be delegated further|within the token it presents/.test(reason))
    return 'invalid_grant';
  if (/^ttl |holder_jkt is required|environment cannot change/.test(reason)) return 'invalid_request';
  return 'unauthorized_client';
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
