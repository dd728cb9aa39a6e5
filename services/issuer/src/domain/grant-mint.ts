import {
  type AgentRecord,
  AppError,
  type AuditPublisher,
  type Clock,
  type GrantRecord,
  grantRemainingSeconds,
  isName,
  type RevocationMirror,
  revocationKeys,
  type SigningKey,
} from '@aoa/core';
import { decide, type Policy, parseGrantPrincipal } from '@aoa/policy';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { buildClaims, signAccessToken } from './mint.js';

export interface GrantSource {
  grant(id: string): Promise<GrantRecord | undefined>;
  agents(grantId: string): Promise<AgentRecord[]>;
  /**
   * Records the durable tombstone (`state: revoked`) of a grant found revoked in `aoa_revocations`,
   * whose entries expire with the bucket's max age; the tombstone stays until an administrator
   * restores the grant.
   */
  tombstone(id: string, reason: string): Promise<void>;
}

export interface GrantMintContext {
  issuer: string;
  policy(): Policy;
  signingKey(): SigningKey;
  revocations: Pick<RevocationMirror, 'ready' | 'check' | 'get'>;
  audit: Pick<AuditPublisher, 'publish'>;
  clock: Clock;
  grants: GrantSource;
}

/** One agent's credential: ciphertext only. */
export interface GrantDelivery {
  agent: string;
  jti: string;
  exp: number;
  jwe: string;
}

const GRANT_ID = /^[A-Za-z0-9_-]{8,64}$/;
const JKT = /^[A-Za-z0-9_-]{43}$/;

/**
 * Mints the current credential of every agent of a standing grant. The grant is read fresh from
 * `aoa_grants` (a tombstone refuses, on every replica), its revocation mark and its subject's and
 * app's watermarks are checked, and policy is asked again as for a root delegation by the grant's
 * parent principal, whose authority is the policy itself. Each token is bound to its agent's DPoP key,
 * carries `aoa_grant`, never outlives the grant, and is encrypted to that agent alone (compact JWE,
 * ECDH-ES+A256KW, A256GCM). Answers only after `grant.minted` is acknowledged (fail closed).
 */
export async function mintForGrant(ctx: GrantMintContext, grantId: unknown): Promise<GrantDelivery[]> {
  if (typeof grantId !== 'string' || !GRANT_ID.test(grantId)) {
    throw new AppError('invalid_argument', 'grant_id: must be 8 to 64 base64url characters');
  }
  if (!ctx.revocations.ready()) throw new AppError('unavailable', 'revocation view not synchronised');
  const grant = await ctx.grants.grant(grantId);
  if (!grant) throw new AppError('not_found', 'grant not found');
  if (grant.state !== 'active') throw new AppError('failed_precondition', 'grant is revoked');
  const principal = parseGrantPrincipal(grant.sub);
  if (!principal || !isName(grant.app) || !isName(grant.env)) {
    throw new AppError('internal', 'stored grant is malformed', { detail: { grant: grantId } });
  }
  const nowMs = ctx.clock.nowMs();
  const nowSeconds = Math.floor(nowMs / 1000);
  const remaining = grantRemainingSeconds(grant, nowSeconds);
  if (remaining <= 0) throw new AppError('failed_precondition', 'grant has expired');
  const since = grant.restored_at_ms ?? grant.created_at_ms;
  // A mark older than the grant's restore is one the restore lifted (a late notice may re-add it).
  const mark = ctx.revocations.get(revocationKeys.grant(grant.id));
  if (mark && mark.at_ms >= since) {
    await ctx.grants.tombstone(grant.id, 'grant revoked');
    throw new AppError('failed_precondition', 'grant is revoked (grant)');
  }
  const subjectMark = ctx.revocations.get(revocationKeys.sub(grant.sub));
  if (subjectMark && subjectMark.at_ms >= since) {
    throw new AppError('failed_precondition', 'grant is suspended: its subject is revoked');
  }
  const agents = await ctx.grants.agents(grantId);
  const [first] = agents;
  if (!first) return [];
  const policy = ctx.policy();
  const key = ctx.signingKey();
  assertStoredAgent(first, grantId);
  // Asked once: the agents' requests differ only in holderJkt, which decide checks only for presence.
  const decision = decide(policy, {
    principal: { kind: 'idp', idp: principal.idp, sub: principal.sub, groups: grant.groups ?? [] },
    child: grant.app,
    env: grant.env,
    scopes: grant.scopes,
    audience: grant.audience,
    ttlSeconds: Math.min(grant.token_ttl_seconds, remaining),
    holderJkt: first.dpop_jkt,
    parent: undefined,
    nowSeconds,
  });
  if (!decision.allow) throw new AppError('permission_denied', decision.reason, { rule: decision.rule });
  const minted: Array<GrantDelivery & { kid: string }> = [];
  for (const agent of agents) {
    assertStoredAgent(agent, grantId);
    const claims = buildClaims({
      issuer: ctx.issuer,
      origin: { kind: 'root', idp: principal.idp, sub: principal.sub, clientId: grant.parent_client },
      child: grant.app,
      env: grant.env,
      decision,
      holderJkt: agent.dpop_jkt,
      nowMs,
    });
    claims.aoa_grant = grant.id;
    claims.exp = Math.min(claims.exp, nowSeconds + remaining);
    const revoked = ctx.revocations.check({ ...claims, kid: key.kid });
    if (revoked) throw new AppError('failed_precondition', `grant is revoked (${revoked.key.split('.')[0]})`);
    const token = signAccessToken(claims, key);
    minted.push({
      agent: agent.agent,
      jti: claims.jti,
      exp: claims.exp,
      jwe: await encryptTo(agent.enc_jwk, token),
      kid: key.kid,
    });
  }
  await ctx.audit.publish('grant.minted', grant.id, {
    grant_id: grant.id,
    parent_client: grant.parent_client,
    sub: grant.sub,
    child: grant.app,
    env: grant.env,
    scopes: grant.scopes,
    rule: decision.rule,
    audience: decision.audience,
    ttl_seconds: decision.expSeconds - nowSeconds,
    deliveries: minted.map(({ agent, jti, exp, kid }) => ({ agent, jti, exp, kid })),
  });
  return minted.map(({ agent, jti, exp, jwe }) => ({ agent, jti, exp, jwe }));
}

function assertStoredAgent(agent: AgentRecord, grantId: string): void {
  if (!isName(agent.agent) || !JKT.test(agent.dpop_jkt)) {
    throw new AppError('internal', 'stored agent is malformed', { detail: { grant: grantId } });
  }
}

async function encryptTo(jwk: JWK, token: string): Promise<string> {
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk, 'ECDH-ES+A256KW');
  } catch (error) {
    throw new AppError('internal', 'agent encryption key unusable', { cause: error });
  }
  return new CompactEncrypt(new TextEncoder().encode(token))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'at+jwt' })
    .encrypt(key);
}
