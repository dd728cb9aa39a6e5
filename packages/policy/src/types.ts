import type { KeyObject } from 'node:crypto';
import type { RefusalReason } from '@aoa/core';
import type { JWK } from 'jose';
import type { Condition } from './conditions.js';
import type { IdpProfile } from './profiles.js';

/** A trusted IdP. `namespace` prefixes its subjects: `idp:<namespace>:<subject claim>`. */
export interface IdpConfig {
  namespace: string;
  profile: IdpProfile;
  /** Exact, or (profile entra) a template holding `{tenantid}`, filled from the token's `tid`. */
  issuer: string;
  /** The tenants a templated issuer accepts; empty for an exact issuer. */
  tenants: string[];
  /** The discovery document, when not derived from the issuer. */
  discoveryUrl: string | undefined;
  audience: string;
  subjectClaim: string;
  /** Claims read as the identity's groups. */
  groupsClaims: string[];
  /** Accepted `typ` headers (lowercase, `''` for none); undefined accepts any. */
  tokenTypes: string[] | undefined;
  /** JWS algorithms accepted from this IdP (never `none`, never HS*). */
  algorithms: string[];
  /** Claims required besides `exp` and the subject claim. */
  requiredClaims: string[];
  /** Allowed skew of the IdP's clock, 0 to 300 s: `iat` later than now plus this is refused. */
  clockSkewSeconds: number;
  /** kubernetes only: the API server asked (TokenReview) whether it still accepts each token. */
  tokenReview: TokenReviewConfig | undefined;
}

/** A cluster's TokenReview endpoint, and the credentials aoa presents to it. */
export interface TokenReviewConfig {
  /** The API server's base URL, no trailing slash. */
  server: string;
  /** PEM CA of the API server; absent, the system's roots. */
  caFile: string | undefined;
  /** aoa's own service-account token (re-read at each review: the kubelet rotates it). */
  tokenFile: string;
  /** How long an answer is kept, 1 to 60 s (never past the token's `exp`). */
  cacheSeconds: number;
}

/** An IdP identity a client may present: by subject, or by membership of a group. */
export interface PresentRule {
  idp: string;
  subjects: string[];
  groups: string[];
}

/** A client's registered public key, imported once at load. */
export interface ClientKey {
  kid: string | undefined;
  alg: string | undefined;
  jwk: JWK;
  key: KeyObject;
}

/** A client authenticated by a workload token of a trusted IdP (no stored key). */
export interface ClientFederation {
  /** The IdP namespace whose tokens authenticate the client. */
  idp: string;
  /** Which of that IdP's workloads are this client. */
  when: Condition;
  /** How old (since `iat`) the workload token may be. */
  maxAgeSeconds: number;
}

export interface ClientConfig {
  id: string;
  admin: boolean;
  /** Empty for a federated client. */
  keys: ClientKey[];
  federated: ClientFederation | undefined;
  /** RFC 8705 `tls_client_auth`: the URI SAN of the client certificate that authenticates it, if any. */
  tlsClientAuthSanUri: string | undefined;
  mayPresent: PresentRule[];
  dpopBoundAccessTokens: boolean;
  /** Roles whose holders own this client (owner tokens, `aoa:owner:<id>`). */
  owners: string[];
}

export interface RoleConfig {
  name: string;
  /**
   * groups as `<namespace>:<group>`, subjects as `idp:<namespace>:<sub>`, client ids, app ids, and IdP
   * namespaces whose every identity is a member (always with a `when`).
   */
  members: { groups: string[]; subjects: string[]; clients: string[]; apps: string[]; idps: string[] };
  /** Held only when this holds on the identity's claims. */
  when: Condition | undefined;
}

export interface AppConfig {
  name: string;
  environments: string[];
  audiences: string[];
}

export interface RuleConfig {
  name: string;
  role: string;
  children: string[];
  environments: string[];
  /** Scopes per environment. */
  scopes: Record<string, string[]>;
  maxTtlSeconds: number;
  mayDelegate: boolean;
  /** How many further levels of sub-delegation a token minted under this rule may start (0 unless may_delegate). */
  maxDepth: number;
  bearerAllowed: boolean;
  /** Allows nothing unless this holds on the claims and the request. */
  when: Condition | undefined;
}

/** An agent whose public keys are registered in policy for a grant (enrolled without a join token). */
export interface PolicyGrantAgent {
  id: string;
  /** Public only, checked as `Rotator.Enroll` checks it. */
  encryptionJwk: JWK;
  dpopJwk: JWK;
}

/** A standing grant declared in policy (`grants:`); the policy is its authority. */
export interface PolicyGrant {
  name: string;
  /** The parent principal, `idp:<namespace>:<sub>`; policy decides for it by subject (no groups). */
  sub: string;
  parentClient: string;
  app: string;
  env: string;
  /** Sorted. */
  scopes: string[];
  /** Sorted; empty: every audience of the app. */
  audience: string[];
  tokenTtlSeconds: number;
  /** Counted from the grant's creation; 0: no expiry (`expires_in: none`). */
  expiresInSeconds: number;
  agents: PolicyGrantAgent[];
  /** Agents may enrol by their pod's service-account token instead of a join token. */
  attest: GrantAttestation | undefined;
}

/** Which pods may enrol an agent into a grant: a kubernetes IdP's namespace and service account. */
export interface GrantAttestation {
  idp: string;
  namespace: string;
  serviceAccount: string;
  when: Condition | undefined;
}

export interface Policy {
  version: 1;
  /** Hex SHA-256 of the source bytes. */
  hash: string;
  path: string;
  limits: { maxTokenTtlSeconds: number };
  idps: IdpConfig[];
  clients: ClientConfig[];
  roles: RoleConfig[];
  apps: AppConfig[];
  rules: RuleConfig[];
  grants: PolicyGrant[];
}

/** Who is asking for a token: an IdP identity (root delegation) or an aoa app (sub-delegation). */
export type Principal =
  | { kind: 'idp'; idp: string; sub: string; groups: string[] }
  | { kind: 'app'; app: string };

/** What the presented aoa token allows its holder to pass on (sub-delegation only). */
export interface ParentBounds {
  env: string;
  scopes: string[];
  audience: string[];
  expSeconds: number;
  depth: number;
  maxDepth: number;
}

export interface DelegationRequest {
  principal: Principal;
  child: string;
  env: string;
  scopes: string[];
  /** Empty: every audience of the child app (within the parent's). */
  audience: string[];
  /** 0: the longest the rule and the parent allow. */
  ttlSeconds: number;
  holderJkt: string | undefined;
  parent: ParentBounds | undefined;
  nowSeconds: number;
  /**
   * What `when` conditions read as `claims`: the verified IdP token's payload (root delegation) or the
   * presented aoa token's claims (sub-delegation). Absent (a standing grant): conditions see none.
   */
  claims?: Readonly<Record<string, unknown>>;
}

export type Decision =
  | {
      allow: true;
      rule: string;
      scopes: string[];
      audience: string[];
      expSeconds: number;
      bearer: boolean;
      depth: number;
      maxDepth: number;
    }
  | {
      allow: false;
      /** Stable and machine-readable; see `REFUSAL_REASONS`. */
      code: RefusalReason;
      reason: string;
      /** The rule that refused, when one came closest. */
      rule: string | undefined;
      /** The bound the request broke, e.g. `parent.scope` or `limits.max_token_ttl`. */
      constraint: string | undefined;
    };
