import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { createIdpAdapter, type IdpClient } from './idp-adapter.js';
import { handleInteraction, type IdpUser, type InteractionProvider } from './idp-login.js';
import { requestClientCredentialsToken } from './idp-token.js';

export type { IdpClient } from './idp-adapter.js';
export type { IdpUser } from './idp-login.js';

/** Scopes every resource offers, besides any the client asks for. */
const DEFAULT_SCOPES = ['read', 'write'];
const ACCESS_TOKEN_TTL_SECONDS = 600;
const SIGNING_ALG = 'ES256';

/** Options of {@link startIdp}. */
export interface StartIdpOptions {
  /** Clients known from the start; more can be added with `addClient`. */
  clients?: IdpClient[];
  /** People who may sign in (authorization code grant, at `/interaction/...`). */
  users?: IdpUser[];
  /**
   * A certificate and key (PEM): the provider also answers over HTTPS on a second port
   * (`tlsTokenEndpoint`), as it would behind TLS in production. `iss` stays the HTTP issuer.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** A running OpenID provider started by {@link startIdp}. */
export interface TestIdp {
  /** `http://127.0.0.1:<port>`, the `iss` of every token. */
  readonly issuer: string;
  /** `<issuer>/jwks`, the provider's public signing keys. */
  readonly jwksUri: string;
  /** `<issuer>/token`. */
  readonly tokenEndpoint: string;
  /** `https://127.0.0.1:<tls port>/token`, with the `tls` option only. */
  readonly tlsTokenEndpoint: string | undefined;
  /**
   * Performs a real client_credentials request (client_secret_basic) for `resource` and returns the
   * access token, a JWT whose `aud` is `resource`. Rejects with the OAuth error when refused.
   */
  token(clientId: string, resource: string, scope?: string): Promise<string>;
  /** Registers or replaces a client; takes effect on the next request, no restart. */
  addClient(client: IdpClient): void;
  /** While down, every request is answered 503, as an IdP outage would be. */
  setDown(down: boolean): void;
  /** While broken, the JWKS endpoint answers 200 with a body that is not JSON. */
  breakJwks(broken: boolean): void;
  /** While withdrawn, the JWKS endpoint serves no key, as after the IdP rotated its key out. */
  withdrawKeys(withdrawn: boolean): void;
  /** Closes the server and every open connection. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a real OpenID provider (`oidc-provider`) on a free loopback port. It issues JWT access
 * tokens (`typ: at+jwt`, ES256, from a key pair generated here) through the client_credentials grant
 * with a resource indicator (RFC 8707): `aud` is the requested resource, any absolute URL is
 * accepted, `sub` is the client id (or the client's `sub`), and `groups` holds the client's groups.
 * People in `users` sign in through the authorization code grant (PKCE) of a client with
 * `redirectUris`; their access tokens have `sub` = their login and `groups` = their groups.
 *
 * @example
 * await using idp = await startIdp({ clients: [{ clientId: 'ci', clientSecret: 's3cret', groups: ['ops'] }] });
 * const jwt = await idp.token('ci', 'https://api.example');
 * await jwtVerify(jwt, createRemoteJWKSet(new URL(idp.jwksUri)), { issuer: idp.issuer, audience: 'https://api.example' });
 */
export async function startIdp(options: StartIdpOptions = {}): Promise<TestIdp> {
  const clients = new Map<string, IdpClient>();
  for (const client of options.clients ?? []) clients.set(client.clientId, client);
  const users = new Map((options.users ?? []).map((user) => [user.login, user]));
  const flags = { down: false, jwksBroken: false, keysWithdrawn: false };
  let handler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;

  const serve = (request: IncomingMessage, response: ServerResponse) => {
    if (flags.down) return void answer(response, 503, '{"error":"temporarily_unavailable"}');
    if (new URL(request.url ?? '/', 'http://x').pathname === '/jwks') {
      if (flags.jwksBroken) return void answer(response, 200, '{"keys": [ not json');
      if (flags.keysWithdrawn) return void answer(response, 200, '{"keys":[]}');
    }
    if (handler === undefined) return void answer(response, 503, '{"error":"starting"}');
    handler(request, response);
  };
  const server = createServer(serve);
  const port = await listen(server);
  const tlsServer = options.tls && createTlsServer({ cert: options.tls.cert, key: options.tls.key }, serve);
  const tlsPort = tlsServer && (await listen(tlsServer));
  const issuer = `http://127.0.0.1:${port}`;
  const lastServerError: { error?: unknown } = {};
  try {
    // Loaded on first use: importing the testkit for NATS alone should not load a whole OpenID provider.
    const { default: Provider } = await import('oidc-provider');
    const provider = new Provider(issuer, await providerConfiguration(clients, users));
    provider.on('server_error', (_ctx, error) => {
      lastServerError.error = error;
    });
    const callback = provider.callback();
    const interactions = provider as unknown as InteractionProvider;
    handler = (request, response) => {
      handleInteraction(interactions, users, request, response)
        .then((handled) => {
          if (!handled) callback(request, response);
        })
        .catch((error: unknown) => {
          lastServerError.error = error;
          if (!response.headersSent) answer(response, 400, '{"error":"invalid_request"}');
          else response.end();
        });
    };
  } catch (error) {
    server.close();
    tlsServer?.close();
    throw error;
  }

  let stopped: Promise<void> | undefined;
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  const stop = (): Promise<void> => {
    stopped ??= Promise.all([close(server), tlsServer && close(tlsServer)]).then(() => undefined);
    return stopped;
  };
  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    tlsTokenEndpoint: tlsPort === undefined ? undefined : `https://127.0.0.1:${tlsPort}/token`,
    async token(clientId, resource, scope) {
      const client = clients.get(clientId);
      if (client === undefined) throw new TypeError(`test IdP: unknown client ${clientId}`);
      return requestClientCredentialsToken(tokenEndpoint, client, resource, scope, lastServerError);
    },
    addClient(client) {
      clients.set(client.clientId, client);
    },
    setDown(down) {
      flags.down = down;
    },
    breakJwks(broken) {
      flags.jwksBroken = broken;
    },
    withdrawKeys(withdrawn) {
      flags.keysWithdrawn = withdrawn;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function providerConfiguration(
  clients: ReadonlyMap<string, IdpClient>,
  users: ReadonlyMap<string, IdpUser>,
): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = {
    ...(await exportJWK(privateKey)),
    kid: randomBytes(8).toString('hex'),
    alg: SIGNING_ALG,
    use: 'sig',
  };
  const clientOf = (token: unknown): IdpClient | undefined => {
    const clientId = (token as { clientId?: unknown }).clientId;
    return typeof clientId === 'string' ? clients.get(clientId) : undefined;
  };
  const userOf = (token: unknown): IdpUser | undefined => {
    const accountId = (token as { accountId?: unknown }).accountId;
    return typeof accountId === 'string' ? users.get(accountId) : undefined;
  };
  return {
    adapter: createIdpAdapter(clients),
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, id: string) => {
      const user = users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, name: user.name ?? id, groups: user.groups ?? [] }),
      };
    },
    claims: { openid: ['sub'], profile: ['name', 'groups'] },
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    clientDefaults: { id_token_signed_response_alg: SIGNING_ALG },
    ttl: { ClientCredentials: ACCESS_TOKEN_TTL_SECONDS, AccessToken: ACCESS_TOKEN_TTL_SECONDS },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async (ctx: unknown, resource: string) => ({
          scope: [...new Set([...DEFAULT_SCOPES, ...requestedScopes(ctx)])].join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
          jwt: { sign: { alg: SIGNING_ALG } },
        }),
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: unknown) => ({
      groups: (userOf(token) ?? clientOf(token))?.groups ?? [],
    }),
    formats: {
      customizers: {
        // oidc-provider puts `sub: clientId` for client_credentials and lets no extra claim override it.
        jwt: async (_ctx: unknown, token: unknown, jwt: { payload: Record<string, unknown> }) => {
          if (userOf(token)) return;
          const client = clientOf(token);
          if (client?.sub !== undefined) jwt.payload.sub = client.sub;
          if (client?.mayAct !== undefined) jwt.payload.may_act = { sub: client.mayAct };
        },
      },
    },
  };
}

function requestedScopes(ctx: unknown): string[] {
  const scope = (ctx as { oidc?: { params?: { scope?: unknown } } }).oidc?.params?.scope;
  return typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
}

function answer(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(body);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}
