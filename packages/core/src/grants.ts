/**
 * The records of KV `aoa_grants` (contract section 5), written by the rotator and read by the issuer
 * when it mints for a grant: one definition for both.
 */

/** A standing grant as stored under `grant.<id>` in KV `aoa_grants`. */
export interface GrantRecord {
  id: string;
  /** The parent principal, `idp:<namespace>:<sub>`. */
  sub: string;
  parent_client: string;
  app: string;
  env: string;
  scopes: string[];
  audience: string[];
  token_ttl_seconds: number;
  /** Unix seconds. */
  expires_at: number;
  /** A revoked grant is a durable tombstone: the issuer refuses to mint for it. */
  state: 'active' | 'revoked';
  created_at_ms: number;
  /** When an administrator last restored it: subject revocations before this no longer suspend it. */
  restored_at_ms?: number;
}

/** An enrolled agent, under `agent.<grant>.<agent>`. */
export interface AgentRecord {
  grant: string;
  agent: string;
  enc_jwk: Record<string, unknown>;
  dpop_jwk: Record<string, unknown>;
  dpop_jkt: string;
  enrolled_at_ms: number;
}

/** Keys of KV `aoa_grants`. */
export const grantKeys = {
  grant: (id: string) => `grant.${id}`,
  agent: (grant: string, agent: string) => `agent.${grant}.${agent}`,
  agentsOf: (grant: string) => `agent.${grant}.*`,
  join: (hash: string) => `join.${hash}`,
  lease: (grant: string) => `lease.${grant}`,
};
