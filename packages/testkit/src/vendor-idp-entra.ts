import { randomBytes, randomUUID } from 'node:crypto';
import type { VendorSigningKey } from './vendor-idp-keys.js';
import { type Claims, type Route, randomBase64url, type ShapeProfile } from './vendor-idp-profile.js';

// Microsoft Entra ID (Azure AD) access tokens, v1.0 and v2.0, and the endpoints around them:
// https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
// https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens (issuer and signing-key issuer
// validation with the tenant-independent metadata)

export type EntraVersion = 'v1' | 'v2';

/** The placeholder Entra ID's tenant-independent (`common`) metadata puts in its issuer. */
export const TENANT_ID_TEMPLATE = '{tenantid}';

/** v2: `<origin>/<tid>/v2.0` (login.microsoftonline.com); v1: `<origin>/<tid>/` (sts.windows.net), slash included. */
export function entraIssuer(origin: string, version: EntraVersion, tenantId: string): string {
  return version === 'v2' ? `${origin}/${tenantId}/v2.0` : `${origin}/${tenantId}/`;
}

/** The one user every token of a tenant is about; a user has another `oid` and `sub` in each tenant. */
interface TenantUser {
  readonly oid: string;
  readonly sub: string;
  readonly upn: string;
  readonly groups: readonly string[];
}

/**
 * An access token for a user of a registered API, as a confidential client (`azpacr`/`appidacr` 1, a
 * secret) gets it. v2.0 has `azp`, `preferred_username` and a `kid`-only header; v1.0 has `appid`, `upn`,
 * `unique_name`, `amr` and `x5t` besides `kid`, equal to it.
 */
export function entraProfile(version: EntraVersion): ShapeProfile {
  const clientAppId = randomUUID();
  const users = new Map<string, TenantUser>();
  const userIn = (tenantId: string): TenantUser => {
    let user = users.get(tenantId);
    if (user === undefined) {
      user = {
        oid: randomUUID(),
        sub: randomBase64url(32),
        upn: `ada.lovelace@tenant-${tenantId.slice(0, 8)}.onmicrosoft.com`,
        groups: [randomUUID(), randomUUID()],
      };
      users.set(tenantId, user);
    }
    return user;
  };
  const opaque = () => ({ aio: `AXQAi/8IAAAA${randomBytes(96).toString('base64')}`, rh: 'I' });
  return {
    kidStyle: 'x5t',
    ttlSeconds: 3900,
    routes:
      version === 'v2'
        ? { token: '/oauth2/v2.0/token', jwks: '/discovery/v2.0/keys' }
        : { token: '/oauth2/token', jwks: '/discovery/keys' },
    header: (key) => (version === 'v2' ? { typ: 'JWT' } : { typ: 'JWT', x5t: key.x5t }),
    claims: ({ issuer, audience, iat, exp, tenantId = '' }): Claims => {
      const user = userIn(tenantId);
      const { aio, rh } = opaque();
      const times = { aud: audience, iss: issuer, iat, nbf: iat, exp };
      const uti = randomBase64url(16);
      if (version === 'v2') {
        return {
          ...times,
          aio,
          azp: clientAppId,
          azpacr: '1',
          groups: [...user.groups],
          name: 'Ada Lovelace',
          oid: user.oid,
          preferred_username: user.upn,
          rh,
          roles: ['Deploy.Write'],
          scp: 'access_as_user',
          sub: user.sub,
          tid: tenantId,
          uti,
          ver: '2.0',
        };
      }
      return {
        ...times,
        acr: '1',
        aio,
        amr: ['pwd'],
        appid: clientAppId,
        appidacr: '1',
        family_name: 'Lovelace',
        given_name: 'Ada',
        groups: [...user.groups],
        ipaddr: '203.0.113.7',
        name: 'Ada Lovelace',
        oid: user.oid,
        rh,
        roles: ['Deploy.Write'],
        scp: 'user_impersonation',
        sub: user.sub,
        tid: tenantId,
        unique_name: user.upn,
        upn: user.upn,
        uti,
        ver: '1.0',
      };
    },
  };
}

/** Options of {@link entraRouter}. */
export interface EntraRouterOptions {
  readonly origin: string;
  readonly version: EntraVersion;
  readonly tenants: readonly string[];
  readonly key: VendorSigningKey;
}

/**
 * Maps Entra ID's paths onto one oidc-provider per tenant, each mounted at `/<tid>`. Entra's issuer
 * (`/<tid>/v2.0`) is not a prefix of its own token and keys endpoints (`/<tid>/oauth2/v2.0/token`,
 * `/<tid>/discovery/v2.0/keys`), so the v2 discovery request is handed to the provider as if it had come
 * to `/<tid>/.well-known/openid-configuration`, which makes every URL in it start at `/<tid>`. The keys
 * documents and the `common` discovery are answered here: oidc-provider's JWKS holds no `x5t` or
 * `issuer` members, and no provider can have the template issuer.
 */
export function entraRouter(options: EntraRouterOptions): (pathname: string) => Route | undefined {
  const { origin, version, tenants } = options;
  const v = version === 'v2' ? '/v2.0' : '';
  const keysPath = `/discovery${v}/keys`;
  const tokenPath = version === 'v2' ? '/oauth2/v2.0/token' : '/oauth2/token';
  const templateIssuer = entraIssuer(origin, version, TENANT_ID_TEMPLATE);
  const json = (body: unknown): Route => ({
    kind: 'json',
    contentType: 'application/json; charset=utf-8',
    body,
  });
  const keys = (issuer: string | undefined) => json(entraKeys(options.key, version, issuer));
  const common: Record<string, Route> = {
    [`/common${v}/.well-known/openid-configuration`]: json(commonDiscovery(origin, version, templateIssuer)),
    [`/common${keysPath}`]: keys(templateIssuer),
  };
  return (pathname) => {
    const commonRoute = common[pathname];
    if (commonRoute !== undefined) return commonRoute;
    const match = /^\/([^/]+)(\/.*)$/.exec(pathname);
    const tenantId = match?.[1];
    const rest = match?.[2];
    if (tenantId === undefined || rest === undefined || !tenants.includes(tenantId)) return undefined;
    const provider = (url: string): Route => ({
      kind: 'provider',
      tenantId,
      url,
      originalUrl: `/${tenantId}${url}`,
    });
    if (rest === `${v}/.well-known/openid-configuration`)
      return provider('/.well-known/openid-configuration');
    if (rest === tokenPath) return provider(tokenPath);
    if (rest === keysPath) return keys(entraIssuer(origin, version, tenantId));
    return undefined;
  };
}

/**
 * A keys document as Entra ID serves it: no `alg`, `x5t` equal to `kid`, and on the v2.0 endpoints an
 * `issuer` member naming which issuer may use the key (the template on `common`); the v1.0 endpoints
 * attach no issuer to keys (Microsoft.IdentityModel's AadTokenValidationParametersExtension relies on it).
 */
function entraKeys(key: VendorSigningKey, version: EntraVersion, issuer: string | undefined): unknown {
  const { kty, n, e } = key.publicJwk;
  const jwk = { kty, use: 'sig', kid: key.kid, x5t: key.x5t, n, e };
  return { keys: [version === 'v2' ? { ...jwk, issuer } : jwk] };
}

/**
 * The tenant-independent metadata: the template issuer and the common keys. It lists only what this IdP
 * serves; no token can be minted at `common`.
 */
function commonDiscovery(origin: string, version: EntraVersion, issuer: string): unknown {
  const v = version === 'v2' ? '/v2.0' : '';
  return {
    issuer,
    jwks_uri: `${origin}/common/discovery${v}/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    tenant_region_scope: null,
  };
}
