import { AppError } from '@aoa/core';
import { type IdpConfig, TENANT_PLACEHOLDER, tenantOfIssuer } from '@aoa/policy';
import type { JWTPayload } from 'jose';
import type { IdpKeySet } from './idp-keys.js';

/** The `iss` of Kubernetes' legacy, secret-based service-account tokens: they never expire. */
export const LEGACY_KUBERNETES_ISSUER = 'kubernetes/serviceaccount';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const invalid = (message: string) =>
  new AppError('unauthenticated', `subject token: ${message}`, { reason: 'SUBJECT_TOKEN_INVALID' });

/**
 * The issuer a token from `idp` must carry: the IdP's own, or for a `{tenantid}` template the template
 * filled with an accepted tenant (read from the unverified `iss`; the signature check confirms it).
 *
 * @throws AppError `unauthenticated` when a templated issuer names a tenant the IdP does not accept
 */
export function expectedIssuer(idp: IdpConfig, iss: unknown): string {
  if (!idp.issuer.includes(TENANT_PLACEHOLDER)) return idp.issuer;
  if (typeof iss === 'string' && tenantOfIssuer(idp, iss) !== undefined) return iss;
  throw new AppError(
    'unauthenticated',
    `subject token: tenant not accepted by identity provider ${idp.namespace}`,
    {
      reason: 'UNTRUSTED_ISSUER',
    },
  );
}

/** Refuses a `typ` header the IdP's profile does not issue (e.g. an ID token where an access token is due). */
export function assertTokenType(typ: unknown, idp: IdpConfig): void {
  if (idp.tokenTypes === undefined) return;
  const actual = typeof typ === 'string' ? typ.toLowerCase() : '';
  if (!idp.tokenTypes.includes(actual)) {
    const accepted = idp.tokenTypes.map((type) => (type === '' ? '(none)' : type)).join(', ');
    throw invalid(
      `typ ${actual === '' ? '(none)' : JSON.stringify(actual)} is not accepted (accepted: ${accepted})`,
    );
  }
}

/**
 * The checks each profile needs beyond signature, issuer, audience and times:
 * - entra: `tid` is a GUID and the tenant of the issuer, the signing key's own `issuer` (when the
 *   JWKS gives one) is this issuer, and a groups overage is refused, never read as "no groups";
 * - kubernetes: a `kubernetes.io` claim naming the namespace and service account that `sub` names.
 */
export function assertProfileClaims(
  payload: JWTPayload,
  idp: IdpConfig,
  issuer: string,
  signer: { keySet: IdpKeySet; kid: string | undefined },
): void {
  if (idp.profile === 'entra') assertEntraClaims(payload, idp, issuer, signer);
  if (idp.profile === 'kubernetes') assertServiceAccountClaims(payload);
}

function assertEntraClaims(
  payload: JWTPayload,
  idp: IdpConfig,
  issuer: string,
  signer: { keySet: IdpKeySet; kid: string | undefined },
): void {
  const tid = payload.tid;
  if (typeof tid !== 'string' || !GUID.test(tid)) throw invalid('tid must be a tenant id (a GUID)');
  if (!issuer.includes(`/${tid}/`)) throw invalid("tid is not the tenant of the token's issuer");
  const key = signer.keySet.jwks()?.keys.find((jwk) => jwk.kid === signer.kid) as
    | { issuer?: unknown }
    | undefined;
  if (typeof key?.issuer === 'string' && key.issuer.replace(TENANT_PLACEHOLDER, tid) !== issuer) {
    throw invalid(`the signing key belongs to another issuer than ${issuer}`);
  }
  const claimNames = payload._claim_names as { groups?: unknown } | undefined;
  if (
    idp.groupsClaims.includes('groups') &&
    (claimNames?.groups !== undefined || payload.hasgroups === true)
  ) {
    throw new AppError(
      'permission_denied',
      `subject token: Entra ID left its groups out (groups overage: more groups than fit in a token); ` +
        `in the app registration emit only groups assigned to the application ("groupMembershipClaims": ` +
        `"ApplicationGroup") or use app roles, or set groups_claim: roles for identity provider ${idp.namespace}`,
      { reason: 'GROUPS_OVERAGE' },
    );
  }
}

function assertServiceAccountClaims(payload: JWTPayload): void {
  const k8s = payload['kubernetes.io'] as
    | { namespace?: unknown; serviceaccount?: { name?: unknown } }
    | undefined;
  const namespace = k8s?.namespace;
  const account = k8s?.serviceaccount?.name;
  if (typeof namespace !== 'string' || typeof account !== 'string') {
    throw invalid('kubernetes.io must name the namespace and serviceaccount');
  }
  if (payload.sub !== `system:serviceaccount:${namespace}:${account}`) {
    throw invalid('sub is not the service account kubernetes.io names');
  }
}
