/** Stable codes of {@link VerifyError}, after RFC 6750 section 3.1 and RFC 9449 section 7.1. */
export type VerifyErrorCode =
  /** No credentials at all: answer 401 with a bare challenge (RFC 6750 section 3.1). */
  | 'missing_token'
  | 'invalid_request'
  | 'invalid_token'
  | 'invalid_dpop_proof'
  | 'insufficient_scope'
  /** The verifier cannot vouch for revocation (not yet synchronised, or disconnected too long). */
  | 'unavailable';

const STATUS: Record<VerifyErrorCode, number> = {
  missing_token: 401,
  invalid_request: 400,
  invalid_token: 401,
  invalid_dpop_proof: 401,
  insufficient_scope: 403,
  unavailable: 503,
};

/** DPoP algorithms a resource server advertises in its challenge. */
export const CHALLENGE_DPOP_ALGS = 'EdDSA ES256';

/**
 * A refused request: `code` to switch on, `reason` (public, never token material), the HTTP `status`,
 * and the `WWW-Authenticate` value to send (a `DPoP` challenge for bound tokens, `Bearer` otherwise).
 * For `insufficient_scope`, `scope` (space separated) is the scope the resource needs, announced in
 * the challenge's `scope` attribute (RFC 6750 section 3).
 *
 * @example
 * try { await verifier.verify(request) } catch (e) { if (e instanceof VerifyError) res.writeHead(e.status, { 'www-authenticate': e.wwwAuthenticate }) }
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly status: number;
  readonly wwwAuthenticate: string;

  constructor(
    readonly code: VerifyErrorCode,
    readonly reason: string,
    readonly scheme: 'Bearer' | 'DPoP' | 'both' = 'both',
    readonly scope?: string,
  ) {
    // A refusal is an answer, not a fault: no stack trace, which would cost most of a refusal's time
    // (a flood of bad or revoked tokens should cost the resource server as little as possible).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}: ${reason}`);
    Error.stackTraceLimit = limit;
    this.status = STATUS[code];
    this.wwwAuthenticate = challenge(code, reason, scheme, scope);
  }
}

function challenge(
  code: VerifyErrorCode,
  reason: string,
  scheme: 'Bearer' | 'DPoP' | 'both',
  scope: string | undefined,
): string {
  // 503s still answer a challenge: the client may retry, and no detail of the token is implied.
  const error = code === 'unavailable' ? 'invalid_token' : code;
  const scopeParam =
    code === 'insufficient_scope' && scope ? `, scope="${scope.replace(/["\\]/g, "'")}"` : '';
  const params =
    code === 'missing_token'
      ? ''
      : `error="${error}", error_description="${reason.replace(/["\\]/g, "'")}"${scopeParam}`;
  const bearer = params ? `Bearer ${params}` : 'Bearer';
  const dpop = `DPoP algs="${CHALLENGE_DPOP_ALGS}"${params ? `, ${params}` : ''}`;
  if (scheme === 'Bearer') return bearer;
  if (scheme === 'DPoP') return dpop;
  return `${dpop}, ${bearer}`;
}
