import { decide } from './decide.js';
import { type Problems, quote } from './errors.js';
import { parseGrantPrincipal } from './grant-schema.js';
import type { DelegationRequest, Policy, PolicyGrant } from './types.js';

/** Stands in for an agent's DPoP key: every grant credential is key-bound to its agent. */
export const GRANT_HOLDER_PLACEHOLDER = 'grant-agents-are-key-bound';

/**
 * The delegation every mint for a policy grant asks for: its parent principal (by subject; a grant in
 * policy has no token to read groups from), app, environment, scopes, audience and token TTL.
 *
 * @example
 * const decision = decide(policy, grantRequest(grant, Math.floor(Date.now() / 1000)));
 */
export function grantRequest(grant: PolicyGrant, nowSeconds: number): DelegationRequest {
  const { idp, sub } = parseGrantPrincipal(grant.sub) ?? { idp: '', sub: '' };
  return {
    principal: { kind: 'idp', idp, sub, groups: [] },
    child: grant.app,
    env: grant.env,
    scopes: grant.scopes,
    audience: grant.audience,
    ttlSeconds: grant.tokenTtlSeconds,
    holderJkt: GRANT_HOLDER_PLACEHOLDER,
    parent: undefined,
    nowSeconds,
  };
}

/**
 * A grant in policy must be one the policy's own rules allow, and must outlive one of its tokens;
 * each refusal names the grant and the reason, at `grants[<index>]`.
 */
export function checkGrantsAllowed(policy: Policy, problems: Problems): void {
  policy.grants.forEach((grant, index) => {
    const decision = decide(policy, grantRequest(grant, 0));
    if (!decision.allow) {
      problems.add(['grants', index], `grant ${quote(grant.name)} is not allowed: ${decision.reason}`);
    }
    if (grant.expiresInSeconds !== 0 && grant.expiresInSeconds <= grant.tokenTtlSeconds) {
      problems.add(
        ['grants', index, 'expires_in'],
        `${grant.expiresInSeconds}s does not outlive one token (token_ttl ${grant.tokenTtlSeconds}s)`,
      );
    }
  });
}
