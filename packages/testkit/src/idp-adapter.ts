/**
 * A client of the test IdP: a confidential client allowed the client_credentials grant and, with
 * `redirectUris`, the authorization code grant (PKCE required) for people who sign in.
 */
export interface IdpClient {
  clientId: string;
  clientSecret: string;
  /**
   * Public keys: when given, the client authenticates with `private_key_jwt` (RFC 7523) instead of its
   * secret, as aoa's own clients must.
   */
  jwks?: Array<Record<string, unknown>>;
  /** Put in the access token's `groups` claim; empty when absent. */
  groups?: string[];
  /** The access token's `sub`; the client id when absent. */
  sub?: string;
  /** When set, the access token carries RFC 8693 `may_act: { sub }`. */
  mayAct?: string;
  /** Where the authorization code grant may send its code (and sign-out return); none: no such grant. */
  redirectUris?: string[];
}

/** The shape oidc-provider expects of a storage adapter, one instance per model name. */
interface Adapter {
  upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Record<string, unknown> | undefined>;
  findByUid(uid: string): Promise<Record<string, unknown> | undefined>;
  findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/**
 * The oidc-provider metadata of a test client: secret in the Authorization header (or, with `jwks`,
 * `private_key_jwt`), redirects only when it signs people in.
 */
export function clientMetadata(client: IdpClient): Record<string, unknown> {
  const redirects = client.redirectUris ?? [];
  return {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    grant_types: redirects.length > 0 ? ['client_credentials', 'authorization_code'] : ['client_credentials'],
    response_types: redirects.length > 0 ? ['code'] : [],
    redirect_uris: redirects,
    post_logout_redirect_uris: redirects.map((uri) => new URL('/', uri).href),
    ...(client.jwks
      ? { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: client.jwks } }
      : { token_endpoint_auth_method: 'client_secret_basic' }),
  };
}

/**
 * An in-memory oidc-provider adapter factory for one IdP instance. The `Client` model reads the
 * live `clients` map, which is what lets `addClient` work on a running provider; every other model
 * is a plain map (client_credentials JWTs are never stored, so these stay small).
 */
export function createIdpAdapter(clients: ReadonlyMap<string, IdpClient>): (model: string) => Adapter {
  const stores = new Map<string, Adapter>();
  return (model) => {
    let adapter = stores.get(model);
    if (adapter === undefined) {
      adapter = model === 'Client' ? clientAdapter(clients) : mapAdapter();
      stores.set(model, adapter);
    }
    return adapter;
  };
}

function clientAdapter(clients: ReadonlyMap<string, IdpClient>): Adapter {
  const found = clients.get.bind(clients);
  return {
    ...mapAdapter(),
    async find(id) {
      const client = found(id);
      return client === undefined ? undefined : clientMetadata(client);
    },
  };
}

function mapAdapter(): Adapter {
  const rows = new Map<string, Record<string, unknown>>();
  const where = (field: string, value: string) =>
    [...rows.values()].find((payload) => payload[field] === value);
  return {
    async upsert(id, payload) {
      rows.set(id, payload);
    },
    async find(id) {
      return rows.get(id);
    },
    async findByUid(uid) {
      return where('uid', uid);
    },
    async findByUserCode(userCode) {
      return where('userCode', userCode);
    },
    async consume(id) {
      const payload = rows.get(id);
      if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id) {
      rows.delete(id);
    },
    async revokeByGrantId(grantId) {
      for (const [id, payload] of rows) if (payload.grantId === grantId) rows.delete(id);
    },
  };
}
