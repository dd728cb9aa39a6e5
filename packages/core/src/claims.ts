/** One ancestor of a token, root first (contract section 3, `aoa_lineage`). */
export interface LineageEntry {
  jti: string;
  app: string;
  env: string;
  iat_ms: number;
  kid: string;
  grant?: string;
}

/** RFC 8693 actor chain: the outermost `sub` is the current actor. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
}

/** The claims of an aoa access token (RFC 9068 plus aoa's own). */
export interface AoaClaims {
  iss: string;
  sub: string;
  aud: string[];
  client_id: string;
  env: string;
  scope: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  act: ActorClaim;
  aoa_lineage: LineageEntry[];
  aoa_iat_ms: number;
  /** Deepest lineage length this token's descendants may reach; equal to its own depth when it may not delegate. */
  aoa_max_depth: number;
  /** The policy rule that allowed it. */
  aoa_rule: string;
  aoa_grant?: string;
  cnf?: { jkt: string };
}

export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** The app id of `app:<app>` actors, or undefined for anything else. */
export const actorApp = (actor: string): string | undefined =>
  actor.startsWith('app:') ? actor.slice(4) : undefined;

/** Actor chain flattened, current actor first. */
export function actorList(act: ActorClaim | undefined): string[] {
  const out: string[] = [];
  for (let a = act; a; a = a.act) out.push(a.sub);
  return out;
}

/** Depth of a token: the length of its lineage; a root delegation has depth 0. */
export const depthOf = (claims: Pick<AoaClaims, 'aoa_lineage'>): number => claims.aoa_lineage.length;

/**
 * The scope that makes the holder of an aoa token an administrator of the services (an operator
 * token): with {@link OPERATOR_AUDIENCE} in `aud`, key-bound, presented with a DPoP proof. Policy
 * decides who may be issued one, through the ordinary Delegate path.
 */
export const OPERATOR_SCOPE = 'aoa:admin';

/** The audience an operator token must name (see {@link OPERATOR_SCOPE}). */
export const OPERATOR_AUDIENCE = 'urn:aoa:admin';

/**
 * The scope a rule lists to let owners of parent clients have owner tokens: requested as is, it
 * becomes `aoa:owner:<client>` for every client whose policy `owners` roles the person holds.
 */
export const OWNER_SCOPE = 'aoa:owner';

/** The scope naming one owned client: `aoa:owner:<client>`. */
export const ownerScope = (client: string): string => `${OWNER_SCOPE}:${client}`;

/** What an operator token lets its holder do: administer everything, or see the clients it owns. */
export interface OperatorRights {
  admin: boolean;
  /** Client ids from `aoa:owner:<client>` scopes, sorted. */
  owns: string[];
}

/**
 * The rights an operator token carries: with {@link OPERATOR_AUDIENCE} in `aud`, {@link OPERATOR_SCOPE}
 * (an administrator) and any `aoa:owner:<client>` scopes (an owner of those clients); undefined when
 * the token carries neither.
 */
export function operatorRights(claims: Pick<AoaClaims, 'aud' | 'scope'>): OperatorRights | undefined {
  if (!claims.aud.includes(OPERATOR_AUDIENCE)) return undefined;
  const scopes = claims.scope.split(' ');
  const prefix = `${OWNER_SCOPE}:`;
  const owns = scopes
    .filter((scope) => scope.startsWith(prefix) && scope.length > prefix.length)
    .map((scope) => scope.slice(prefix.length))
    .sort();
  const admin = scopes.includes(OPERATOR_SCOPE);
  return admin || owns.length > 0 ? { admin, owns } : undefined;
}
