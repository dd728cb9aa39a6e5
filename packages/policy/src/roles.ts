import type { Condition, ConditionInput } from './conditions.js';
import type { DelegationRequest, Policy, Principal, RoleConfig } from './types.js';

/** `idp:<namespace>:<sub>` or `app:<app>`: how a principal is named in reasons and tokens. */
export const principalName = (principal: Principal): string =>
  principal.kind === 'idp' ? `idp:${principal.idp}:${principal.sub}` : `app:${principal.app}`;

/**
 * The roles a principal is a member of, before any `when`: an IdP identity by its subject
 * (`idp:<namespace>:<sub>`), any of its groups (`<namespace>:<group>`) or its IdP, an app by name.
 */
export function memberRoles(policy: Policy, principal: Principal): RoleConfig[] {
  if (principal.kind === 'app')
    return policy.roles.filter((role) => role.members.apps.includes(principal.app));
  const subject = principalName(principal);
  const groups = new Set(principal.groups.map((group) => `${principal.idp}:${group}`));
  return policy.roles.filter(
    (role) =>
      role.members.subjects.includes(subject) ||
      role.members.groups.some((g) => groups.has(g)) ||
      role.members.idps.includes(principal.idp),
  );
}

/**
 * The roles a principal holds: those it is a member of whose `when` (if any) holds on `input`.
 *
 * @example
 * rolesOf(policy, { kind: 'app', app: 'dashboards' }); // ['deployers']
 */
export function rolesOf(policy: Policy, principal: Principal, input: ConditionInput = NO_INPUT): string[] {
  return memberRoles(policy, principal)
    .filter((role) => holds(role.when, input))
    .map((role) => role.name);
}

const NO_INPUT: ConditionInput = { claims: {}, request: { child: '', env: '', scopes: [], audience: [] } };

export const holds = (condition: Condition | undefined, input: ConditionInput): boolean =>
  condition === undefined || condition.evaluate(input).holds;

/** What a condition said, for a refusal's text: never a claim's value. */
export function conditionText(condition: Condition, input: ConditionInput): string {
  const outcome = condition.evaluate(input);
  return `${JSON.stringify(condition.source)} ${outcome.error ? `failed: ${outcome.error}` : 'is false'}`;
}

/** One `when` that a request meets, and what it said. */
export interface ConditionTrace {
  /** `role <name>` or `rule <name>`. */
  where: string;
  source: string;
  holds: boolean;
  error?: string;
}

/**
 * Every condition the decision for `request` evaluates: those of the roles the principal is a member
 * of, and of those roles' rules that cover the child app and environment (for `aoa policy explain`).
 *
 * @example
 * conditionTrace(policy, request); // [{ where: 'role ci', source: 'claims.ref == "refs/heads/main"', holds: true }]
 */
export function conditionTrace(policy: Policy, request: DelegationRequest): ConditionTrace[] {
  const { child, env, scopes, audience } = request;
  const input: ConditionInput = { claims: request.claims ?? {}, request: { child, env, scopes, audience } };
  const trace = (where: string, condition: Condition): ConditionTrace => {
    const outcome = condition.evaluate(input);
    return {
      where,
      source: condition.source,
      holds: outcome.holds,
      ...(outcome.error ? { error: outcome.error } : {}),
    };
  };
  const roles = memberRoles(policy, request.principal);
  const rules = policy.rules.filter(
    (rule) =>
      roles.some((role) => role.name === rule.role) &&
      rule.children.includes(child) &&
      rule.environments.includes(env),
  );
  return [
    ...roles.flatMap((role) => (role.when ? [trace(`role ${role.name}`, role.when)] : [])),
    ...rules.flatMap((rule) => (rule.when ? [trace(`rule ${rule.name}`, rule.when)] : [])),
  ];
}
