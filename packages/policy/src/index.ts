export { type AgentKeyPurpose, checkAgentJwk, sameAgentKey } from './agent-keys.js';
export { decide, principalName, rolesOf } from './decide.js';
export { explainPolicyError, formatPath, PolicyError } from './errors.js';
export { GRANT_HOLDER_PLACEHOLDER, grantRequest } from './grant-checks.js';
export { policyGrantId } from './grant-id.js';
export {
  MAX_GRANT_TOKEN_TTL_SECONDS,
  MIN_GRANT_TOKEN_TTL_SECONDS,
  parseGrantPrincipal,
} from './grant-schema.js';
export { importClientJwk, type JwkProblem } from './jwk.js';
export { loadPolicyFile, parsePolicy } from './load.js';
export { findApp, findClient, findIdp, findIdpByIssuer, findRole, findRule } from './lookup.js';
export { mayPresent, type PresentDecision, type PresentedIdentity } from './present.js';
export { DEFAULT_IDP_ALGORITHMS, DEFAULT_MAX_TOKEN_TTL_SECONDS, SCOPE_TOKEN } from './schema.js';
export { PolicyStore, type PolicyStoreEvents } from './store.js';
export type * from './types.js';
