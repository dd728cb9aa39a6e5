import { assertMayPresent, callerBy, isAdministrator, type ServiceCaller } from '@aoa/auth';
import { AppError, type GrantRecord, nowSeconds, randomId } from '@aoa/core';
import { decide, findClient, GRANT_HOLDER_PLACEHOLDER, type Policy } from '@aoa/policy';
import { type GrantRequest, parsePrincipal, validateGrantInput } from './grant.js';
import type { RotatorContext } from './operations.js';

export interface CreateGrantInput extends GrantRequest {
  /** Empty for a parent (its subject token names it); any principal for an administrator. */
  sub: string;
  /** Empty: the caller (an operator, not being a client, must name one). */
  parentClient: string;
  /** The parent's IdP token (`subject-token` metadata); absent for an administrator's grant. */
  subjectToken: string | undefined;
}

/** The principal a grant stands for, the groups policy sees it with, and the client that is its parent. */
interface GrantParent {
  sub: string;
  groups: string[] | undefined;
  parentClient: string;
}

/**
 * Creates a standing grant. A parent proves itself (client assertion) and presents its IdP token as
 * `subject-token`: the grant's `sub` is that verified principal, its parent client the caller, its groups
 * the token's. An administrator (an admin client, or an operator naming the parent client) without a
 * token may create a grant for any principal. Either way the
 * request is validated (its lifetime within `AOA_GRANT_MAX_LIFETIME`), checked against policy as the
 * issuer will check every mint, audited before the answer (fail closed), and stored.
 */
export async function createGrant(
  ctx: RotatorContext,
  caller: ServiceCaller,
  raw: CreateGrantInput,
): Promise<GrantRecord> {
  const policy = ctx.policy();
  const parent = await grantParent(ctx, policy, caller, raw);
  const now = nowSeconds(ctx.clock);
  const input = validateGrantInput({ ...raw, sub: parent.sub }, now, ctx.maxGrantLifetimeSeconds);
  const principal = parsePrincipal(input.sub);
  const decision = decide(policy, {
    principal: { kind: 'idp', idp: principal.idp, sub: principal.sub, groups: parent.groups ?? [] },
    child: input.app,
    env: input.env,
    scopes: input.scopes,
    audience: input.audience,
    ttlSeconds: input.tokenTtlSeconds,
    holderJkt: GRANT_HOLDER_PLACEHOLDER,
    parent: undefined,
    nowSeconds: now,
  });
  if (!decision.allow) throw new AppError('permission_denied', decision.reason, { rule: decision.rule });
  const record: GrantRecord = {
    id: randomId(),
    sub: input.sub,
    ...(parent.groups === undefined ? {} : { groups: parent.groups }),
    parent_client: parent.parentClient,
    app: input.app,
    env: input.env,
    scopes: decision.scopes,
    audience: decision.audience,
    token_ttl_seconds: input.tokenTtlSeconds,
    expires_at: input.expiresAt,
    state: 'active',
    created_at_ms: ctx.clock.nowMs(),
  };
  await ctx.audit.publish('grant.created', record.id, {
    ...record,
    by: callerBy(caller),
    rule: decision.rule,
  });
  await ctx.store.createGrant(record);
  return record;
}

async function grantParent(
  ctx: RotatorContext,
  policy: Policy,
  caller: ServiceCaller,
  raw: CreateGrantInput,
): Promise<GrantParent> {
  if (raw.subjectToken) {
    if (caller.kind !== 'client') {
      throw new AppError('invalid_argument', 'subject-token: only a parent client presents its IdP identity');
    }
    const client = caller.client;
    const subject = await ctx.verifySubjectToken(raw.subjectToken, policy);
    assertMayPresent(policy, client, subject);
    const sub = `idp:${subject.idp.namespace}:${subject.sub}`;
    if (raw.sub && raw.sub !== sub) {
      throw new AppError(
        'permission_denied',
        `sub: a parent creates grants for ${sub}, the identity it presents`,
      );
    }
    if (raw.parentClient && raw.parentClient !== client.id) {
      throw new AppError(
        'permission_denied',
        `parent_client: a parent creates grants as itself (${client.id})`,
      );
    }
    return { sub, groups: subject.groups, parentClient: client.id };
  }
  if (caller.kind === 'operator' && !caller.admin) {
    throw new AppError('permission_denied', 'an owner token does not create grants: its parent client does');
  }
  if (!isAdministrator(caller)) {
    throw new AppError(
      'unauthenticated',
      'subject-token required: a parent creates grants for the IdP identity it presents',
    );
  }
  const parentClient = raw.parentClient || (caller.kind === 'client' ? caller.client.id : '');
  if (!parentClient) {
    throw new AppError('invalid_argument', 'parent_client: required when an operator creates a grant');
  }
  if (!findClient(policy, parentClient)) {
    throw new AppError('invalid_argument', `parent_client: unknown client ${parentClient}`);
  }
  return { sub: raw.sub, groups: undefined, parentClient };
}
