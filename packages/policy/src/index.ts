export { type AgentKeyPurpose, checkAgentJwk, sameAgentKey } from './agent-keys.js';
export { CONDITION_LIMITS, type Condition, type ConditionInput, compileCondition } from './conditions.js';
export { decide } from './decide.js';
export { explainPolicyError, formatPath, PolicyError } from './errors.js';
export { GRANT_HOLDER_PLACEHOLDER, grantRequest } from './grant-checks.js';
export { policyGrantId } from './grant-id.js';
export {
  MAX_GRANT_TOKEN_TTL_SECONDS,
  MIN_GRANT_TOKEN_TTL_SECONDS,
  parseGrantPrincipal,
} from './grant-schema.js';
export { importClientJwk, type JwkProblem } from './jwk.js';
export { policyWarnings } from './lint.js';
export { loadPolicyFile, parsePolicy } from './load.js';
export {
  findApp,
  findClient,
  findClientByCertificate,
  findIdp,
  findIdpByIssuer,
  findRole,
  findRule,
  tenantOfIssuer,
} from './lookup.js';
export { mayPresent, type PresentDecision, type PresentedIdentity } from './present.js';
export {
  IDP_PROFILES,
  type IdpProfile,
  PROFILE_DEFAULTS,
  type ProfileDefaults,
  TENANT_PLACEHOLDER,
} from './profiles.js';
export { type ConditionTrace, conditionTrace, principalName, rolesOf } from './roles.js';
export { DEFAULT_MAX_TOKEN_TTL_SECONDS, SCOPE_TOKEN } from './schema.js';
export { PolicyStore, type PolicyStoreEvents } from './store.js';
export type * from './types.js';
