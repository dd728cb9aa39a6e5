import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createIdpAdapter, type IdpClient } from './idp-adapter.js';
import { SIGNING_ALG, type VendorSigningKey } from './vendor-idp-keys.js';
import { type Claims, mergeClaims, type ShapeProfile } from './vendor-idp-profile.js';

/**
 * The resource indicator of every token request. Vendors' audiences are often not URIs (an Entra API's
 * client id, `sts.amazonaws.com`), which RFC 8707 forbids as `resource`; the requested audience travels
 * with the pending mint instead and the JWT customizer writes it into `aud`.
 */
export const VENDOR_RESOURCE = 'urn:aoa:testkit:vendor-idp';

/** What one `token()` call asked for, keyed by the one-off client id it authenticates with. */
export interface PendingMint {
  readonly audience: string;
  readonly claims: Claims | undefined;
}

/** Options of {@link createVendorProvider}. */
export interface VendorProviderSetup {
  readonly issuer: string;
  /** Entra ID only: the tenant this provider is the issuer of. */
  readonly tenantId?: string;
  readonly profile: ShapeProfile;
  readonly key: VendorSigningKey;
  readonly clients: ReadonlyMap<string, IdpClient>;
  readonly pending: ReadonlyMap<string, PendingMint>;
  /** Where provider-side failures are kept, to become the cause of the caller's error. */
  readonly lastServerError: { error?: unknown };
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

interface StructuredJwt {
  header?: Claims;
  payload: Claims;
}

/**
 * Starts an oidc-provider that issues the profile's tokens through the client_credentials grant: the
 * provider signs them with `key`; its JWT customizer replaces the payload with the vendor's claims and
 * sets the vendor's header members (oidc-provider's own payload, `client_id`, `scope` and all, is no
 * vendor's).
 */
export async function createVendorProvider(setup: VendorProviderSetup): Promise<RequestListener> {
  const { profile, pending, issuer, tenantId } = setup;
  // Loaded on first use, as in idp.ts: importing the testkit for NATS alone should not load it.
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(issuer, {
    adapter: createIdpAdapter(setup.clients),
    jwks: { keys: [setup.key.privateJwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    clientDefaults: { id_token_signed_response_alg: SIGNING_ALG },
    routes: profile.routes,
    ttl: { ClientCredentials: profile.ttlSeconds },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async () => ({
          scope: 'vendor',
          audience: VENDOR_RESOURCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: profile.ttlSeconds,
          jwt: { sign: { alg: SIGNING_ALG } },
        }),
      },
    },
    formats: {
      customizers: {
        jwt: async (_ctx: unknown, token: unknown, jwt: StructuredJwt) => {
          const clientId = (token as { clientId?: unknown }).clientId;
          const mint = typeof clientId === 'string' ? pending.get(clientId) : undefined;
          if (mint === undefined)
            throw new Error(`vendor IdP: no pending token for client ${String(clientId)}`);
          const { iat, exp } = jwt.payload;
          if (typeof iat !== 'number' || typeof exp !== 'number') throw new Error('vendor IdP: no iat/exp');
          const base = profile.claims({
            issuer,
            audience: mint.audience,
            iat,
            exp,
            ...(tenantId === undefined ? {} : { tenantId }),
          });
          jwt.payload = mergeClaims(base, mint.claims, profile.derive);
          jwt.header = profile.header(setup.key);
        },
      },
    },
  });
  provider.on('server_error', (_ctx, error) => {
    setup.lastServerError.error = error;
  });
  return provider.callback();
}
