import type { errors } from 'jose';

/** jose's messages name claims and checks, never token content. */
export function joseReason(error: errors.JOSEError): string {
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature invalid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown signing key (kid)';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `claim check failed (${(error as errors.JWTClaimValidationFailed).claim})`;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    default:
      return 'invalid';
  }
}
