import { findClient } from './lookup.js';
import type { Policy } from './types.js';

/** An IdP identity, as verified from a subject token. */
export interface PresentedIdentity {
  idp: string;
  sub: string;
  groups: string[];
}

export type PresentDecision = { ok: true } | { ok: false; reason: string };

/**
 * Whether a registered client may present this IdP identity as a subject token: the client's
 * `may_present` must list the identity's subject, or one of its groups, for that IdP. This is what keeps
 * a captured IdP token useless to any client not registered for it.
 *
 * @example
 * const check = mayPresent(policy, 'argocd', { idp: 'corp', sub: 'argocd-sa', groups: [] });
 * if (!check.ok) throw new AppError('permission_denied', check.reason);
 */
export function mayPresent(policy: Policy, clientId: string, identity: PresentedIdentity): PresentDecision {
  const client = findClient(policy, clientId);
  if (!client) return { ok: false, reason: `unknown client ${clientId}` };
  const allowed = client.mayPresent.some(
    (entry) =>
      entry.idp === identity.idp &&
      (entry.subjects.includes(identity.sub) ||
        identity.groups.some((group) => entry.groups.includes(group))),
  );
  if (allowed) return { ok: true };
  return { ok: false, reason: `client ${clientId} may not present idp:${identity.idp}:${identity.sub}` };
}
