import type { AppConfig, ClientConfig, IdpConfig, Policy, RoleConfig, RuleConfig } from './types.js';

/**
 * A registered client by id.
 *
 * @example
 * const client = findClient(policy, 'argocd'); // undefined when unknown
 */
export const findClient = (policy: Policy, id: string): ClientConfig | undefined =>
  policy.clients.find((client) => client.id === id);

/**
 * The trusted IdP whose issuer is exactly `issuer` (no normalisation: `iss` is compared as a string).
 *
 * @example
 * const idp = findIdpByIssuer(policy, claims.iss);
 */
export const findIdpByIssuer = (policy: Policy, issuer: string): IdpConfig | undefined =>
  policy.idps.find((idp) => idp.issuer === issuer);

/**
 * A trusted IdP by subject namespace.
 *
 * @example
 * findIdp(policy, 'corp')?.groupsClaim; // 'groups'
 */
export const findIdp = (policy: Policy, namespace: string): IdpConfig | undefined =>
  policy.idps.find((idp) => idp.namespace === namespace);

/**
 * A child app by name.
 *
 * @example
 * findApp(policy, 'dashboards')?.audiences;
 */
export const findApp = (policy: Policy, name: string): AppConfig | undefined =>
  policy.apps.find((app) => app.name === name);

/**
 * A rule by name.
 *
 * @example
 * findRule(policy, 'deployers-dashboards')?.maxTtlSeconds;
 */
export const findRule = (policy: Policy, name: string): RuleConfig | undefined =>
  policy.rules.find((rule) => rule.name === name);

/**
 * A role by name.
 *
 * @example
 * findRole(policy, 'deployers')?.members.groups;
 */
export const findRole = (policy: Policy, name: string): RoleConfig | undefined =>
  policy.roles.find((role) => role.name === name);
