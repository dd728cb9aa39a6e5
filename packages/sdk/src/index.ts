export {
  Agent,
  type AgentCredential,
  type AgentKeys,
  type AgentOptions,
  createAgent,
  enrolmentProof,
  generateAgentKeys,
  type RejectedDelivery,
} from './agent.js';
export { type DpopKey, signClientAssertion, signDpopProof } from './caller-proofs.js';
export { fastifyProtect } from './fastify.js';
export { Freshness, type StaleReason } from './freshness.js';
export { type ProtectOptions, protect, refusalOf, requestOf } from './node-http.js';
export { MemoryReplayCache } from './replay-cache.js';
export { type ScopeUsageOptions, ScopeUsageRecorder, type ScopeUsageReport } from './usage.js';
export { createVerifier, type Verifier, type VerifierOptions, type VerifyRequest } from './verifier.js';
export { CHALLENGE_DPOP_ALGS, VerifyError, type VerifyErrorCode } from './verify-error.js';
