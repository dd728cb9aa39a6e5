import { proveCertifiedClient, proveClient } from '@aoa/auth';
import { AppError } from '@aoa/core';
import type { ClientConfig } from '@aoa/policy';
import { decodeJwt } from 'jose';
import type { IssuerContext } from '../domain/delegate.js';
import { OAuthError, type OAuthForm } from './oauth-form.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Client authentication from the form (RFC 7521 section 4.2, RFC 7523 `private_key_jwt`):
 * `client_assertion_type` and `client_assertion` together, `client_id` optional but equal to the
 * assertion's issuer; or, with no assertion, `client_id` alone over a connection whose verified client
 * certificate carries that client's `tls_client_auth_san_uri` (RFC 8705 `tls_client_auth`;
 * `certificateUris` from `requestCertificateUris`). Answers undefined when the form carries no client
 * authentication at all, so the token endpoint can accept a sub-delegating child's DPoP proof
 * instead; every failure is `401 invalid_client`, an unreachable replay store `503`.
 *
 * @example
 * const client = await authenticateFormClient(ctx, form, requestCertificateUris(req));
 */
export async function authenticateFormClient(
  ctx: IssuerContext,
  form: OAuthForm,
  certificateUris: readonly string[],
): Promise<ClientConfig | undefined> {
  const assertion = form.one('client_assertion');
  const assertionType = form.one('client_assertion_type');
  const clientId = form.one('client_id');
  if (!assertion && !assertionType) {
    if (clientId && certificateUris.length > 0) return certifiedFormClient(ctx, clientId, certificateUris);
    if (clientId) throw invalidClient('client authentication required (private_key_jwt or tls_client_auth)');
    return undefined;
  }
  if (assertionType !== JWT_BEARER_ASSERTION)
    throw invalidClient(`client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
  if (!assertion) throw invalidClient('client_assertion: required');
  if (clientId !== undefined && clientId !== assertionIssuer(assertion))
    throw invalidClient('client_id does not match the client assertion');
  try {
    return await proveClient(assertion, ctx);
  } catch (error) {
    if (error instanceof AppError && error.code === 'unauthenticated') throw invalidClient(error.message);
    throw error;
  }
}

/**
 * The client `clientId` names, when the connection's certificate authenticates exactly that client:
 * the same rule as on gRPC (`proveCertifiedClient`), so a certificate naming two clients names neither.
 */
function certifiedFormClient(ctx: IssuerContext, clientId: string, uris: readonly string[]): ClientConfig {
  try {
    return proveCertifiedClient(ctx.policy(), uris, clientId);
  } catch (error) {
    if (error instanceof AppError) throw invalidClient(`${error.message} (tls_client_auth)`);
    throw error;
  }
}

export const invalidClient = (description: string): OAuthError =>
  new OAuthError(401, 'invalid_client', description);

/** The assertion's `iss`, unverified: only to compare with a `client_id` before authenticating. */
function assertionIssuer(assertion: string): unknown {
  try {
    return decodeJwt(assertion).iss;
  } catch {
    return undefined;
  }
}
