export {
  type AssertionContext,
  authenticateClient,
  type CallerContext,
  CLIENT_ASSERTION_ALGORITHMS,
  proveClient,
  requireAdmin,
  verifyClientAssertion,
} from './client-assertion.js';
export { federatedClient, isWorkloadAssertion } from './federated-client.js';
export { IdpKeySets } from './idp-keys.js';
export {
  assertMayPresent,
  MAX_SUBJECT_TOKEN_BYTES,
  trustedIdp,
  unverifiedIssuer,
  type VerifiedIdpToken,
  verifyIdpToken,
  verifyPolicyIdpToken,
} from './idp-token.js';
