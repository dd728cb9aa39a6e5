import {
  actsFor,
  callerBy,
  isAdministrator,
  requireAdministrator,
  type ServiceCaller,
  type VerifiedIdpToken,
} from '@aoa/auth';
import {
  type AgentRecord,
  AppError,
  type AuditPublisher,
  assertName,
  type Clock,
  fingerprint,
  type GrantRecord,
  type KeySetMirror,
  type ReplayGuard,
  type RevocationMirror,
  type Subjects,
} from '@aoa/core';
import type { Policy } from '@aoa/policy';
import type { GrantStore } from '../nats/grant-store.js';
import { assertGrantId } from './grant.js';
import { joinTokenHash, joinTokenTtl, newJoinToken } from './join-token.js';
import { parseAgentKeys } from './public-jwk.js';

export interface RotatorContext {
  issuer: string;
  policy(): Policy;
  store: GrantStore;
  replay: Pick<ReplayGuard, 'claim'>;
  /** The published keys and the revocations, for operator tokens (`@aoa/auth` `proveServiceCaller`). */
  keys: KeySetMirror;
  revocations: Pick<RevocationMirror, 'ready' | 'check'>;
  audit: Pick<AuditPublisher, 'publish'>;
  subjects: Subjects;
  clock: Clock;
  windowSeconds: number;
  maxGrantLifetimeSeconds: number;
  /**
   * Lifts `grant.<id>` from `aoa_revocations` when an administrator restores a grant, unless it was
   * written after `upToMs` (a revocation made while the restore ran stays in force).
   */
  liftGrantRevocation(grantId: string, upToMs: number): Promise<void>;
  /** Asks the rotation loop to tick a grant now. */
  rotateNow(grantId: string): Promise<void>;
  /** Verifies a parent's subject token against the policy's trusted IdPs (as the issuer's Delegate does). */
  verifySubjectToken(token: string, policy: Policy): Promise<VerifiedIdpToken>;
}

async function existingGrant(
  ctx: RotatorContext,
  id: string,
): Promise<{ record: GrantRecord; revision: number }> {
  const found = await ctx.store.grant(assertGrantId(id));
  if (!found) throw new AppError('not_found', 'grant not found');
  return found;
}

/** Whether the caller is the grant's parent client, or an operator who owns it. */
const isParent = (caller: ServiceCaller, grant: GrantRecord): boolean => actsFor(caller, grant.parent_client);

/**
 * Lists grants: all for an administrator (an admin client or an administrator's operator token), a
 * parent client's own otherwise (the client itself, or its owners' operator tokens).
 */
export async function listGrants(
  ctx: RotatorContext,
  caller: ServiceCaller,
  filter: { environment: string; child: string },
): Promise<Array<GrantRecord & { agents: string[] }>> {
  const all = isAdministrator(caller);
  const grants = ctx.store
    .listGrants()
    .filter(
      (g) =>
        (all || isParent(caller, g)) &&
        (!filter.environment || g.env === filter.environment) &&
        (!filter.child || g.app === filter.child),
    );
  return grants.map((g) => ({ ...g, agents: ctx.store.agents(g.id).map((a) => a.agent) }));
}

export async function deleteGrant(ctx: RotatorContext, caller: ServiceCaller, id: string): Promise<void> {
  const by = callerBy(requireAdministrator(caller));
  const { record } = await existingGrant(ctx, id);
  const listed = record.policy_grant;
  if (listed !== undefined && ctx.policy().grants.some((grant) => grant.name === listed)) {
    throw new AppError(
      'failed_precondition',
      `grant comes from policy grant ${listed}: remove it from the policy file instead`,
    );
  }
  await ctx.audit.publish('grant.deleted', record.id, { grant_id: record.id, by });
  await ctx.store.deleteGrant(record.id);
}

/** Lifts a revoked grant's tombstone (administrators), and its revocation mark. */
export async function restoreGrant(
  ctx: RotatorContext,
  caller: ServiceCaller,
  id: string,
): Promise<GrantRecord> {
  const by = callerBy(requireAdministrator(caller));
  // Taken before reading: a revocation of this grant written after this moment outlives the restore.
  const restoredAt = ctx.clock.nowMs();
  const { record, revision } = await existingGrant(ctx, id);
  const restored: GrantRecord = { ...record, state: 'active', restored_at_ms: restoredAt };
  await ctx.audit.publish('grant.restored', record.id, { grant_id: record.id, by });
  await ctx.liftGrantRevocation(record.id, restoredAt);
  await ctx.store.updateGrant(restored, revision);
  await ctx.rotateNow(record.id);
  return restored;
}

/** Rotates a grant now (administrators, or the grant's parent client and its owners). */
export async function rotateNow(ctx: RotatorContext, caller: ServiceCaller, id: string): Promise<void> {
  const { record } = await existingGrant(ctx, id);
  if (!isAdministrator(caller) && !isParent(caller, record)) {
    throw new AppError('permission_denied', "administrators or the grant's parent client only");
  }
  if (record.state !== 'active') throw new AppError('failed_precondition', 'grant is revoked');
  await ctx.rotateNow(record.id);
}

/**
 * Creates a one-time join token for a grant (administrators, or the grant's parent client). Only its
 * SHA-256 is stored; the token is returned once.
 */
export async function createJoinToken(
  ctx: RotatorContext,
  caller: ServiceCaller,
  id: string,
  ttlSeconds: number,
): Promise<{ token: string; expiresAt: number }> {
  const { record } = await existingGrant(ctx, id);
  if (!isAdministrator(caller) && !isParent(caller, record)) {
    throw new AppError('permission_denied', "administrators or the grant's parent client only");
  }
  if (record.state !== 'active') throw new AppError('failed_precondition', 'grant is revoked');
  const ttl = joinTokenTtl(ttlSeconds);
  const token = newJoinToken();
  const hash = joinTokenHash(token);
  const expiresAtMs = ctx.clock.nowMs() + ttl * 1000;
  await ctx.audit.publish('join_token.created', record.id, {
    grant_id: record.id,
    token_hash: hash,
    expires_at_ms: expiresAtMs,
    by: callerBy(caller),
  });
  await ctx.store.createJoinToken(hash, {
    grant: record.id,
    expires_at_ms: expiresAtMs,
    created_by: caller.kind === 'client' ? caller.client.id : callerBy(caller),
  });
  return { token, expiresAt: Math.floor(expiresAtMs / 1000) };
}

export interface EnrollInput {
  joinToken: string;
  agentId: string;
  encryptionJwk: string;
  dpopJwk: string;
}

/**
 * Enrols an agent with a join token: input and keys are checked before the token is consumed (a typo
 * does not burn it), the token is consumed once by compare-and-set, the enrolment audited (fail
 * closed) and stored, and the grant made due so the agent gets a credential at once.
 */
export async function enroll(
  ctx: RotatorContext,
  input: EnrollInput,
): Promise<{ grant: GrantRecord; agent: AgentRecord }> {
  const hash = joinTokenHash(input.joinToken);
  const agentId = assertName('agent_id', input.agentId);
  const keys = parseAgentKeys(input.encryptionJwk, input.dpopJwk);
  const joined = await ctx.store.consumeJoinToken(hash, ctx.clock.nowMs());
  const found = await ctx.store.grant(joined.grant);
  if (!found) throw new AppError('failed_precondition', 'the join token’s grant no longer exists');
  assertActive(found.record);
  return recordEnrolment(ctx, found.record, agentId, keys, { join_token: fingerprint(input.joinToken) });
}

export function assertActive(grant: GrantRecord): void {
  if (grant.state !== 'active') throw new AppError('failed_precondition', 'grant is revoked');
}

/**
 * What every enrolment ends with, once the agent's keys are checked and its grant found (by a join
 * token or a pod's attestation): the `agent.enrolled` event with `how` it was proved, audited before
 * anything is stored (fail closed), the agent stored, and the grant made due so it gets a credential
 * at once.
 */
export async function recordEnrolment(
  ctx: RotatorContext,
  grant: GrantRecord,
  agentId: string,
  keys: ReturnType<typeof parseAgentKeys>,
  how: Record<string, unknown>,
): Promise<{ grant: GrantRecord; agent: AgentRecord }> {
  const agent: AgentRecord = {
    grant: grant.id,
    agent: agentId,
    enc_jwk: { ...keys.encryption },
    dpop_jwk: { ...keys.dpop },
    dpop_jkt: keys.dpopJkt,
    enrolled_at_ms: ctx.clock.nowMs(),
  };
  await ctx.audit.publish('agent.enrolled', grant.id, {
    grant_id: grant.id,
    agent: agentId,
    dpop_jkt: keys.dpopJkt,
    ...how,
  });
  await ctx.store.putAgent(agent);
  await ctx.rotateNow(grant.id);
  return { grant, agent };
}
