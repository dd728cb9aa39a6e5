export {
  type AssertionContext,
  authenticateClient,
  type CallerContext,
  CLIENT_ASSERTION_ALGORITHMS,
  proveCertifiedClient,
  proveClient,
  requireAdmin,
  verifyClientAssertion,
} from './client-assertion.js';
export { type DpopPresentation, type HolderContext, type ProvedHolder, proveHolder } from './dpop-holder.js';
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
export {
  type Administrator,
  actsFor,
  assertOperator,
  type CallerProof,
  callerBy,
  callerProof,
  isAdministrator,
  type Operator,
  type OperatorContext,
  proveAdministrator,
  proveServiceCaller,
  requireAdministrator,
  type ServiceCaller,
} from './operator.js';
