export {
  type AssertionContext,
  authenticateClient,
  CLIENT_ASSERTION_ALGORITHMS,
  verifyClientAssertion,
} from './client-assertion.js';
export { IdpKeySets } from './idp-keys.js';
export {
  assertMayPresent,
  MAX_SUBJECT_TOKEN_BYTES,
  unverifiedIssuer,
  type VerifiedIdpToken,
  verifyIdpToken,
  verifyPolicyIdpToken,
} from './idp-token.js';
