/**
 * The records of KV `aoa_grants` (contract section 5), written by the rotator and read by the issuer
 * when it mints for a grant: one definition for both.
 */

/** A standing grant as stored under `grant.<id>` in KV `aoa_grants`. */
export interface GrantRecord {
  id: string;
  /** The parent principal, `idp:<namespace>:<sub>`. */
  sub: string;
  /**
   * The parent's IdP groups, read from the subject token it presented to `CreateGrant`; policy decides
   * every mint with them. Absent for grants from policy and from administrators: subject only.
   */
  groups?: string[];
  parent_client: string;
  app: string;
  env: string;
  scopes: string[];
  audience: string[];
  token_ttl_seconds: number;
  /** Unix seconds; 0 for a grant from policy declared `expires_in: none` (it lasts while listed). */
  expires_at: number;
  /** A revoked grant is a durable tombstone: the issuer refuses to mint for it. */
  state: 'active' | 'revoked';
  created_at_ms: number;
  /** When an administrator last restored it: subject revocations before this no longer suspend it. */
  restored_at_ms?: number;
  /** The name of the policy grant this record comes from; absent for grants made by `CreateGrant`. */
  policy_grant?: string;
}

/**
 * Seconds a grant has left at `nowSeconds` (infinite for a policy grant without expiry).
 *
 * @example
 * const ttl = Math.min(grant.token_ttl_seconds, grantRemainingSeconds(grant, nowSeconds));
 */
export const grantRemainingSeconds = (grant: Pick<GrantRecord, 'expires_at'>, nowSeconds: number): number =>
  grant.expires_at === 0 ? Number.POSITIVE_INFINITY : grant.expires_at - nowSeconds;

/**
 * Whether a grant has run out at `nowSeconds`.
 *
 * @example
 * const due = grants.filter((g) => g.state === 'active' && !grantExpired(g, now));
 */
export const grantExpired = (grant: Pick<GrantRecord, 'expires_at'>, nowSeconds: number): boolean =>
  grantRemainingSeconds(grant, nowSeconds) <= 0;

/** An enrolled agent, under `agent.<grant>.<agent>`. */
export interface AgentRecord {
  grant: string;
  agent: string;
  enc_jwk: Record<string, unknown>;
  dpop_jwk: Record<string, unknown>;
  dpop_jkt: string;
  enrolled_at_ms: number;
  /** Registered in policy (`grants[].agents`): the policy adds and removes it, not a join token. */
  from_policy?: boolean;
}

/** Keys of KV `aoa_grants`. */
export const grantKeys = {
  grant: (id: string) => `grant.${id}`,
  agent: (grant: string, agent: string) => `agent.${grant}.${agent}`,
  agentsOf: (grant: string) => `agent.${grant}.*`,
  join: (hash: string) => `join.${hash}`,
  /** A service-account token that enrolled an agent (hash of its idp and jti): each enrols once. */
  attest: (hash: string) => `attest.${hash}`,
  lease: (grant: string) => `lease.${grant}`,
};
