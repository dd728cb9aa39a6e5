import { AppError, actorApp, type VerifiedAoaToken } from '@aoa/core';
import type { RevokeTarget } from './target.js';

/**
 * A proved caller: a registered client (client assertion), the holder of a key (DPoP proof), or an
 * operator (the holder of a valid operator token, `@aoa/auth` `assertOperator`): an administrator, or
 * the owner of the clients it names, with those clients' rights.
 */
export type Caller =
  | { kind: 'client'; id: string; admin: boolean }
  | { kind: 'holder'; jkt: string }
  | { kind: 'operator'; sub: string; jti: string; jkt: string; admin: boolean; owns: string[] };

/** How a caller is named in records and audit: `client:<id>`, `jkt:<thumbprint>` or `operator:<sub>`. */
export function callerName(caller: Caller): string {
  switch (caller.kind) {
    case 'client':
      return `client:${caller.id}`;
    case 'holder':
      return `jkt:${caller.jkt}`;
    case 'operator':
      return `operator:${caller.sub}`;
  }
}

export const isAdmin = (caller: Caller): boolean => caller.kind !== 'holder' && caller.admin;

/** Whether the caller acts for a parent client: that client, or an operator who owns it. */
const actsFor = (caller: Caller, clientId: string): boolean =>
  (caller.kind === 'client' && caller.id === clientId) ||
  (caller.kind === 'operator' && caller.owns.includes(clientId));

/** Where a revoked token lives, for the notice subject `aoa.revoked.<env>.<app>`. */
export interface TargetPlace {
  environment: string;
  app: string;
}

/** Does the caller hold this token, or act for the client that requested it? */
function owns(caller: Caller, token: VerifiedAoaToken): boolean {
  const requester = token.claims.client_id.startsWith('client:') ? token.claims.client_id.slice(7) : '';
  if (requester && actsFor(caller, requester)) return true;
  return caller.kind !== 'client' && token.claims.cnf?.jkt === caller.jkt;
}

/**
 * Who may revoke (contract section 3): an administrator anything; otherwise only a `jti`, and only when
 * a presented, verified token D carries the target in its chain (its lineage or itself) at or below a
 * token the caller owns (holds by key, or requested as `client:<id>`). The lineage is signed, so a
 * caller can neither invent ancestry nor reach a sibling branch. A grant's parent client (`grantParent`,
 * read from `aoa_grants` by the caller of this function) may revoke that grant; app, subject and key
 * revocations are for administrators.
 *
 * @example
 * const place = authorizeRevoke(caller, { kind: 'jti', jti }, presentedTokens);
 */
export function authorizeRevoke(
  caller: Caller,
  target: RevokeTarget,
  presented: VerifiedAoaToken[],
  grantParent?: string,
): TargetPlace | undefined {
  if (target.kind === 'app') {
    if (!isAdmin(caller)) throw denied(`${target.kind} revocation is for administrators`);
    return { environment: target.environment, app: target.app };
  }
  if (target.kind === 'grant') {
    const parent = grantParent !== undefined && actsFor(caller, grantParent);
    if (!parent && !isAdmin(caller))
      throw denied("grant revocation is for administrators and the grant's parent client (or its owners)");
    return undefined;
  }
  if (target.kind !== 'jti') {
    const what = target.kind === 'sub' ? 'subject' : 'key';
    if (!isAdmin(caller)) throw denied(`${what} revocation is for administrators`);
    return undefined;
  }
  for (const token of presented) {
    const chain = [...token.claims.aoa_lineage.map((l) => l.jti), token.claims.jti];
    const at = chain.indexOf(target.jti);
    if (at < 0) continue;
    const ownsAncestorOrSelf = presented.some((o) => {
      const index = chain.indexOf(o.claims.jti);
      return index >= 0 && index <= at && owns(caller, o);
    });
    if (ownsAncestorOrSelf || isAdmin(caller)) return placeOf(token, at);
  }
  if (isAdmin(caller)) return undefined;
  throw denied(
    'only the holder or requester of the token or of an ancestor may revoke it: present the token (or a descendant) and the one you own in aoa-token metadata',
  );
}

function placeOf(token: VerifiedAoaToken, at: number): TargetPlace | undefined {
  const entry = token.claims.aoa_lineage[at];
  if (entry) return { environment: entry.env, app: entry.app };
  const app = actorApp(token.claims.act.sub);
  return app ? { environment: token.claims.env, app } : undefined;
}

/** Listings: administrators see everything; others what they revoked, or one token's entry by jti. */
export function mayList(caller: Caller, recordBy: string | undefined, lookupJti: boolean): boolean {
  return isAdmin(caller) || lookupJti || recordBy === callerName(caller);
}

const denied = (message: string) => new AppError('permission_denied', message, { rule: 'revoke-authority' });
