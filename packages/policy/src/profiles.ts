/**
 * IdP profiles: the safe defaults of each kind of token aoa is built to accept, so that a policy says
 * `profile: entra` instead of re-learning each vendor's token shape. Every default can be overridden
 * on the `idps` entry. The shapes follow each vendor's public documentation (docs/idp-profiles.md).
 */
export const IDP_PROFILES = [
  'generic',
  'okta',
  'entra',
  'github-actions',
  'gitlab',
  'kubernetes',
  'terraform-cloud',
] as const;

export type IdpProfile = (typeof IDP_PROFILES)[number];

export interface ProfileDefaults {
  /** The claim that names the principal: `idp:<namespace>:<value>`. */
  subjectClaim: string;
  /** Claims whose string values are the identity's groups (role members `<namespace>:<value>`). */
  groupsClaims: string[];
  /** Accepted JWS `typ` headers, compared case-insensitively; `''` accepts a token with none. */
  tokenTypes: string[] | undefined;
  algorithms: string[];
  /** Claims a token must carry, besides `exp` and the subject claim. */
  requiredClaims: string[];
  /** Whether `issuer` may hold `{tenantid}` (a multi-tenant Entra app). */
  issuerTemplate: boolean;
}

const CI_TYPES = ['JWT'];

/** The defaults per profile. */
export const PROFILE_DEFAULTS: Record<IdpProfile, ProfileDefaults> = {
  generic: {
    subjectClaim: 'sub',
    groupsClaims: ['groups'],
    tokenTypes: undefined,
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    requiredClaims: [],
    issuerTemplate: false,
  },
  // Okta custom authorization servers sign RS256 access tokens with no `typ`; `cid` is the client,
  // `uid` the user, `sub` the user's login (or the client id for client credentials).
  okta: {
    subjectClaim: 'sub',
    groupsClaims: ['groups'],
    tokenTypes: ['', 'JWT', 'application/okta-internal-at+jwt'],
    algorithms: ['RS256'],
    requiredClaims: ['cid'],
    issuerTemplate: false,
  },
  // Entra ID: `sub` is pairwise per application, `oid` is the object's stable id in its tenant.
  entra: {
    subjectClaim: 'oid',
    groupsClaims: ['groups', 'roles'],
    tokenTypes: ['JWT'],
    algorithms: ['RS256'],
    requiredClaims: ['tid'],
    issuerTemplate: true,
  },
  'github-actions': {
    subjectClaim: 'sub',
    groupsClaims: [],
    tokenTypes: CI_TYPES,
    algorithms: ['RS256'],
    requiredClaims: ['repository', 'repository_id', 'repository_owner_id', 'ref', 'job_workflow_ref'],
    issuerTemplate: false,
  },
  gitlab: {
    subjectClaim: 'sub',
    groupsClaims: [],
    tokenTypes: CI_TYPES,
    algorithms: ['RS256'],
    requiredClaims: ['project_id', 'namespace_id', 'ref'],
    issuerTemplate: false,
  },
  // Projected service-account tokens carry no `typ`; the API server signs with RS256 or ES256.
  kubernetes: {
    subjectClaim: 'sub',
    groupsClaims: [],
    tokenTypes: ['', 'JWT'],
    algorithms: ['RS256', 'ES256'],
    requiredClaims: ['kubernetes.io'],
    issuerTemplate: false,
  },
  'terraform-cloud': {
    subjectClaim: 'sub',
    groupsClaims: [],
    tokenTypes: CI_TYPES,
    algorithms: ['RS256'],
    requiredClaims: ['terraform_organization_id', 'terraform_workspace_id', 'terraform_run_phase'],
    issuerTemplate: false,
  },
};

/** The placeholder of a multi-tenant issuer, filled from the token's `tid`. */
export const TENANT_PLACEHOLDER = '{tenantid}';
