import { type AgentRecord, AppError, type GrantRecord, sha256Hex } from '@aoa/core';
import {
  decide,
  grantRequest,
  type Policy,
  type PolicyGrant,
  type PolicyGrantAgent,
  policyGrantId,
} from '@aoa/policy';

/**
 * An audit event id shared by every replica making the same change for the same policy, so the audit
 * stream's duplicate window keeps one event when two replicas race to make it.
 */
export const reconcileEventId = (...parts: string[]): string => sha256Hex(parts.join('\n')).slice(0, 32);

/**
 * The record a policy grant should have in `aoa_grants`, keeping what the policy does not own: the
 * creation time (the expiry counts from it), the state (a revoked grant stays revoked: only
 * `RestoreGrant` lifts it) and the restore time.
 */
export function policyGrantRecord(
  policy: Policy,
  grant: PolicyGrant,
  existing: GrantRecord | undefined,
  nowMs: number,
): GrantRecord {
  const decision = decide(policy, grantRequest(grant, Math.floor(nowMs / 1000)));
  if (!decision.allow) {
    // The loader refuses a policy whose grants its rules do not allow; this is a broken invariant.
    throw new AppError('internal', `policy grant ${grant.name} is not allowed: ${decision.reason}`);
  }
  const createdAtMs = existing?.created_at_ms ?? nowMs;
  return {
    id: policyGrantId(grant.name),
    sub: grant.sub,
    parent_client: grant.parentClient,
    app: grant.app,
    env: grant.env,
    scopes: decision.scopes,
    audience: decision.audience,
    token_ttl_seconds: grant.tokenTtlSeconds,
    expires_at: grant.expiresInSeconds === 0 ? 0 : Math.floor(createdAtMs / 1000) + grant.expiresInSeconds,
    state: existing?.state ?? 'active',
    created_at_ms: createdAtMs,
    ...(existing?.restored_at_ms === undefined ? {} : { restored_at_ms: existing.restored_at_ms }),
    policy_grant: grant.name,
  };
}

const OWNED: Array<keyof GrantRecord> = [
  'sub',
  'parent_client',
  'app',
  'env',
  'scopes',
  'audience',
  'token_ttl_seconds',
  'expires_at',
  'policy_grant',
  'groups',
];

/** Whether the stored record differs from what the policy says in any field the policy owns. */
export const grantDiffers = (stored: GrantRecord, desired: GrantRecord): boolean =>
  OWNED.some((field) => JSON.stringify(stored[field]) !== JSON.stringify(desired[field]));

/** What enrolment changes bring a grant's policy-registered agents in line with the policy. */
export interface AgentPlan {
  /** New agents, and agents whose keys changed (or that a join token enrolled under a policy id). */
  enrol: PolicyGrantAgent[];
  /** Agents the policy registered before and no longer lists. */
  remove: string[];
}

/**
 * Compares a grant's enrolled agents with the agents its policy entry registers. Agents enrolled with
 * a join token are left alone unless the policy claims their id.
 */
export function planAgents(wanted: PolicyGrantAgent[], enrolled: AgentRecord[]): AgentPlan {
  const byId = new Map(enrolled.map((agent) => [agent.agent, agent]));
  const same = (agent: PolicyGrantAgent, record: AgentRecord | undefined) =>
    record?.from_policy === true &&
    JSON.stringify(record.enc_jwk) === JSON.stringify(agent.encryptionJwk) &&
    JSON.stringify(record.dpop_jwk) === JSON.stringify(agent.dpopJwk);
  const ids = new Set(wanted.map((agent) => agent.id));
  return {
    enrol: wanted.filter((agent) => !same(agent, byId.get(agent.id))),
    remove: enrolled.filter((r) => r.from_policy === true && !ids.has(r.agent)).map((r) => r.agent),
  };
}
