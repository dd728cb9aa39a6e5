import { TENANT_PLACEHOLDER } from './profiles.js';
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
 * The one registered client a verified TLS client certificate authenticates (RFC 8705 `tls_client_auth`):
 * the client whose `tls_client_auth_san_uri` is one of the certificate's URI SANs. Undefined when no
 * client matches, and when the certificate's URIs name more than one client (fail closed).
 *
 * @example
 * findClientByCertificate(policy, ['spiffe://example.org/ns/argocd/sa/controller'])?.id; // 'argocd'
 */
export function findClientByCertificate(policy: Policy, uris: readonly string[]): ClientConfig | undefined {
  const matches = policy.clients.filter(
    (client) => client.tlsClientAuthSanUri !== undefined && uris.includes(client.tlsClientAuthSanUri),
  );
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * The trusted IdP whose issuer is exactly `issuer` (no normalisation: `iss` is compared as a string),
 * or whose `{tenantid}` template `issuer` fills with one of its tenants.
 *
 * @example
 * const idp = findIdpByIssuer(policy, claims.iss);
 */
export const findIdpByIssuer = (policy: Policy, issuer: string): IdpConfig | undefined =>
  policy.idps.find((idp) => idp.issuer === issuer) ??
  policy.idps.find((idp) => tenantOfIssuer(idp, issuer) !== undefined);

/**
 * The tenant a templated IdP's `issuer` names, when it is the template filled with an accepted tenant.
 *
 * @example
 * tenantOfIssuer(entra, 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0');
 */
export function tenantOfIssuer(idp: IdpConfig, issuer: string): string | undefined {
  const [before, after] = idp.issuer.split(TENANT_PLACEHOLDER);
  if (after === undefined || before === undefined) return undefined;
  if (!issuer.startsWith(before) || !issuer.endsWith(after)) return undefined;
  const tenant = issuer.slice(before.length, issuer.length - after.length);
  return idp.tenants.includes(tenant) ? tenant : undefined;
}

/**
 * A trusted IdP by subject namespace.
 *
 * @example
 * findIdp(policy, 'corp')?.groupsClaims; // ['groups']
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
