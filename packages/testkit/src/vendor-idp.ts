import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { IdpClient } from './idp-adapter.js';
import { requestClientCredentialsToken } from './idp-token.js';
import {
  type EntraVersion,
  entraIssuer,
  entraProfile,
  entraRouter,
  TENANT_ID_TEMPLATE,
} from './vendor-idp-entra.js';
import { generateSigningKey, SIGNING_ALG, type VendorSigningKey } from './vendor-idp-keys.js';
import {
  type Claims,
  mergeClaims,
  type Route,
  type ShapeProfile,
  type VendorShape,
} from './vendor-idp-profile.js';
import { createVendorProvider, type PendingMint, VENDOR_RESOURCE } from './vendor-idp-provider.js';
import {
  githubActionsProfile,
  gitlabProfile,
  type KubernetesWorkload,
  kubernetesProfile,
  oktaProfile,
  terraformCloudProfile,
} from './vendor-idp-shapes.js';
import { type ClusterState, tokenReviewHandler } from './vendor-idp-token-review.js';

export type { VendorShape } from './vendor-idp-profile.js';

/** Options of {@link startVendorIdp}. */
export interface StartVendorIdpOptions {
  shape: VendorShape;
  /** entra only: tenants served on the same port, default one random GUID */
  tenants?: string[];
}

/** A running OpenID provider whose tokens have one vendor's shape, started by {@link startVendorIdp}. */
export interface VendorIdp {
  readonly shape: VendorShape;
  /**
   * The issuer of tokens (for entra: of the first tenant), a loopback URL laid out like the vendor's:
   * okta `http://127.0.0.1:<port>/oauth2/<authServerId>`, entra-v2 `http://127.0.0.1:<port>/<tid>/v2.0`,
   * entra-v1 `http://127.0.0.1:<port>/<tid>/` (slash included, as sts.windows.net), github-actions,
   * gitlab, kubernetes and terraform-cloud `http://127.0.0.1:<port>`. Its discovery document is at
   * `<issuer>/.well-known/openid-configuration` (okta also `<issuer>/.well-known/oauth-authorization-server`;
   * entra-v1 `<issuer>.well-known/openid-configuration`, the issuer ending in a slash).
   */
  readonly issuer: string;
  /** entra: the issuer of any tenant id, served or not; other shapes: throws TypeError. */
  issuerFor(tenantId: string): string;
  /**
   * entra only: the issuer of the tenant-independent discovery document, `http://127.0.0.1:<port>/{tenantid}/v2.0`
   * (v2, at `/common/v2.0/.well-known/openid-configuration`) or `http://127.0.0.1:<port>/{tenantid}/` (v1, at
   * `/common/.well-known/openid-configuration`).
   */
  readonly templateIssuer?: string;
  /** The vendor's key set path, e.g. `<issuer>/v1/keys` (okta), `/<tid>/discovery/v2.0/keys` (entra-v2). */
  readonly jwksUri: string;
  /**
   * Mints a token through the provider's token endpoint (a real client_credentials request that
   * oidc-provider answers and signs) with the vendor's default claims for the shape. `claims` are merged
   * over them shallowly; a claim given as `undefined` is removed; claims the vendor derives from others
   * (`sub` of github-actions, gitlab, kubernetes, terraform-cloud; `terraform_full_workspace`) follow the
   * overrides unless given too. `audience` is the `aud` (kubernetes: `[audience]`). `tenant` picks the
   * entra tenant (default the first). Returns the compact JWT.
   */
  token(request: { audience: string; claims?: Record<string, unknown>; tenant?: string }): Promise<string>;
  /** Closes the server and every open connection. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const SHAPES: readonly VendorShape[] = [
  'okta',
  'entra-v1',
  'entra-v2',
  'github-actions',
  'gitlab',
  'kubernetes',
  'terraform-cloud',
];

/** What `legacyServiceAccountToken` and `kubernetesCluster` need of a kubernetes IdP, kept off its public surface. */
const kubernetesSigners = new WeakMap<
  VendorIdp,
  { key: VendorSigningKey; workload: KubernetesWorkload; cluster: ClusterState }
>();

/**
 * Starts a real OpenID provider (`oidc-provider`) on a free loopback port that issues tokens in one
 * vendor's shape: its claims, header (`typ`, `kid` format, `x5t`), RS256 key, issuer layout, discovery
 * and key-set paths. Entra shapes serve several tenants on one port, all signing with the same key, plus
 * the tenant-independent (`common`) metadata.
 *
 * @example
 * await using idp = await startVendorIdp({ shape: 'github-actions' });
 * const jwt = await idp.token({ audience: 'https://aoa.example', claims: { environment: 'staging' } });
 * const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(idp.jwksUri)), { issuer: idp.issuer });
 * payload.sub; // 'repo:octo-org/octo-repo:environment:staging'
 */
export async function startVendorIdp(options: StartVendorIdpOptions): Promise<VendorIdp> {
  const { shape } = options;
  if (!SHAPES.includes(shape)) throw new TypeError(`vendor IdP: unknown shape ${String(shape)}`);
  const entra = entraVersion(shape);
  const tenants = tenantsOf(options, entra);
  const { profile, issuerPath, workload } = profileFor(shape);
  const key = await generateSigningKey(profile.kidStyle);

  let router: ((pathname: string) => Route | undefined) | undefined;
  let api: ((request: IncomingMessage, response: ServerResponse) => boolean) | undefined;
  const listeners = new Map<string, (request: IncomingMessage, response: ServerResponse) => void>();
  const server = createServer((request, response) => {
    if (api?.(request, response)) return;
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const route = router?.(url.pathname);
    if (route === undefined) return void answer(response, 404, 'application/json', { error: 'not_found' });
    if (route.kind === 'json') return void answer(response, 200, route.contentType, route.body);
    const listener = listeners.get(route.tenantId);
    if (listener === undefined) return void answer(response, 503, 'application/json', { error: 'starting' });
    // Mounting the way Express does: oidc-provider derives its mount path from originalUrl minus url.
    request.url = route.url + url.search;
    (request as IncomingMessage & { originalUrl?: string }).originalUrl = route.originalUrl + url.search;
    listener(request, response);
  });
  const origin = `http://127.0.0.1:${await listen(server)}`;

  const issuers = new Map<string, string>();
  const mounts = new Map<string, string>();
  for (const tenantId of tenants) {
    issuers.set(tenantId, entra ? entraIssuer(origin, entra, tenantId) : origin + issuerPath);
    mounts.set(tenantId, entra ? `/${tenantId}` : issuerPath);
  }
  const clients = new Map<string, IdpClient>();
  const pending = new Map<string, PendingMint>();
  const lastServerError: { error?: unknown } = {};
  try {
    for (const [tenantId, issuer] of issuers) {
      const setup = { issuer, profile, key, clients, pending, lastServerError };
      listeners.set(tenantId, await createVendorProvider(entra ? { ...setup, tenantId } : setup));
    }
  } catch (error) {
    server.close();
    throw error;
  }
  router = entra ? entraRouter({ origin, version: entra, tenants, key }) : prefixRouter(issuerPath);
  const cluster: ClusterState = { authDelegators: new Set(), deletedPods: new Set(), reviewed: [] };
  if (workload !== undefined) api = tokenReviewHandler(origin, key, cluster);

  const first = tenants[0] as string;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return stopped;
  };
  const idp: VendorIdp = {
    shape,
    issuer: issuers.get(first) as string,
    ...(entra ? { templateIssuer: entraIssuer(origin, entra, TENANT_ID_TEMPLATE) } : {}),
    jwksUri: `${origin}${mounts.get(first)}${profile.routes.jwks}`,
    issuerFor(tenantId) {
      if (!entra) throw new TypeError(`vendor IdP: ${shape} has no tenants`);
      return entraIssuer(origin, entra, tenantId);
    },
    async token({ audience, claims, tenant }) {
      if (typeof audience !== 'string' || audience === '')
        throw new TypeError('vendor IdP: audience required');
      if (tenant !== undefined && !entra) throw new TypeError(`vendor IdP: ${shape} has no tenants`);
      const tenantId = tenant ?? first;
      const mount = mounts.get(tenantId);
      if (mount === undefined) throw new TypeError(`vendor IdP: tenant ${tenantId} is not served`);
      // A one-off client per request: it is how the JWT customizer finds this request's audience and claims.
      const client = {
        clientId: `vendor-${randomUUID()}`,
        clientSecret: randomBytes(24).toString('base64url'),
      };
      clients.set(client.clientId, client);
      pending.set(client.clientId, { audience, claims });
      try {
        const tokenEndpoint = `${origin}${mount}${profile.routes.token}`;
        return await requestClientCredentialsToken(
          tokenEndpoint,
          client,
          VENDOR_RESOURCE,
          undefined,
          lastServerError,
        );
      } finally {
        clients.delete(client.clientId);
        pending.delete(client.clientId);
      }
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
  if (workload !== undefined) kubernetesSigners.set(idp, { key, workload, cluster });
  return idp;
}

/**
 * A legacy, Secret-based service-account token of the kubernetes IdP's service account: what the token
 * controller wrote into `kubernetes.io/service-account-token` Secrets before bound tokens. It has no
 * `aud`, `iat` or `exp`, its `iss` is `kubernetes/serviceaccount`, and it is signed with the IdP's key
 * (same `kid`), so only the issuer tells it from a projected token. No provider serves that issuer, so it
 * is signed here rather than minted. `claims` work as in `token()`.
 *
 * @example
 * await using idp = await startVendorIdp({ shape: 'kubernetes' });
 * const legacy = await legacyServiceAccountToken(idp);
 * decodeJwt(legacy).iss; // 'kubernetes/serviceaccount'
 */
export async function legacyServiceAccountToken(
  idp: VendorIdp,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const signer = kubernetesSigners.get(idp);
  if (signer === undefined) throw new TypeError('legacyServiceAccountToken: needs a kubernetes vendor IdP');
  const { key, workload } = signer;
  const prefix = 'kubernetes.io/serviceaccount/';
  const base: Claims = {
    iss: 'kubernetes/serviceaccount',
    [`${prefix}namespace`]: workload.namespace,
    [`${prefix}secret.name`]: workload.legacySecretName,
    [`${prefix}service-account.name`]: workload.serviceAccount.name,
    [`${prefix}service-account.uid`]: workload.serviceAccount.uid,
    sub: '',
  };
  const derive = (merged: Readonly<Claims>): Claims => ({
    sub: `system:serviceaccount:${String(merged[`${prefix}namespace`])}:${String(merged[`${prefix}service-account.name`])}`,
  });
  return new SignJWT(mergeClaims(base, claims, derive))
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid })
    .sign(key.privateKey);
}

/** The API server side of a kubernetes IdP: where TokenReview is served, and the state it reads. */
export interface KubernetesCluster extends ClusterState {
  /** The API server's base URL (the issuer's origin); TokenReview is at `<server>/apis/authentication.k8s.io/v1/tokenreviews`. */
  readonly server: string;
  /** The pod uid the IdP's tokens are bound to (`kubernetes.io.pod.uid`), unless a token overrides it. */
  readonly podUid: string;
}

/**
 * The kubernetes IdP's API server: it serves `POST /apis/authentication.k8s.io/v1/tokenreviews` as
 * kube-apiserver does. Add a caller's `sub` to `authDelegators` to let it review (the
 * `system:auth-delegator` binding); add a pod uid to `deletedPods` to invalidate the pod's tokens.
 *
 * @example
 * await using idp = await startVendorIdp({ shape: 'kubernetes' });
 * const cluster = kubernetesCluster(idp);
 * cluster.authDelegators.add('system:serviceaccount:aoa:aoa-issuer');
 * cluster.deletedPods.add(cluster.podUid);
 */
export function kubernetesCluster(idp: VendorIdp): KubernetesCluster {
  const signer = kubernetesSigners.get(idp);
  if (signer === undefined) throw new TypeError('kubernetesCluster: needs a kubernetes vendor IdP');
  const { cluster, workload } = signer;
  return { ...cluster, server: new URL(idp.issuer).origin, podUid: workload.pod.uid };
}

function entraVersion(shape: VendorShape): EntraVersion | undefined {
  if (shape === 'entra-v1') return 'v1';
  if (shape === 'entra-v2') return 'v2';
  return undefined;
}

function tenantsOf(options: StartVendorIdpOptions, entra: EntraVersion | undefined): string[] {
  if (!entra) {
    if (options.tenants !== undefined) throw new TypeError(`vendor IdP: ${options.shape} has no tenants`);
    return [''];
  }
  const tenants = options.tenants ?? [randomUUID()];
  const valid = (tenant: unknown) =>
    typeof tenant === 'string' && /^[^/{}?#]+$/.test(tenant) && tenant !== 'common';
  if (tenants.length === 0 || !tenants.every(valid) || new Set(tenants).size !== tenants.length) {
    throw new TypeError('vendor IdP: tenants must be distinct path-safe ids (GUIDs), other than "common"');
  }
  return [...tenants];
}

function profileFor(shape: VendorShape): {
  profile: ShapeProfile;
  issuerPath: string;
  workload?: KubernetesWorkload;
} {
  switch (shape) {
    case 'okta': {
      const profile = oktaProfile();
      return { profile, issuerPath: `/oauth2/${profile.authorizationServerId}` };
    }
    case 'entra-v1':
      return { profile: entraProfile('v1'), issuerPath: '' };
    case 'entra-v2':
      return { profile: entraProfile('v2'), issuerPath: '' };
    case 'github-actions':
      return { profile: githubActionsProfile(), issuerPath: '' };
    case 'gitlab':
      return { profile: gitlabProfile(), issuerPath: '' };
    case 'kubernetes': {
      const profile = kubernetesProfile();
      return { profile, issuerPath: '', workload: profile.workload };
    }
    case 'terraform-cloud':
      return { profile: terraformCloudProfile(), issuerPath: '' };
  }
}

/** Everything under the issuer's path goes to the one provider, the prefix stripped (okta's `/oauth2/<id>`). */
function prefixRouter(prefix: string): (pathname: string) => Route | undefined {
  return (pathname) => {
    if (prefix !== '' && !pathname.startsWith(`${prefix}/`)) return undefined;
    return { kind: 'provider', tenantId: '', url: pathname.slice(prefix.length), originalUrl: pathname };
  };
}

function answer(response: ServerResponse, status: number, contentType: string, body: unknown): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}
