/**
 * The stable, machine-readable reasons aoa gives for refusing a request: the `reason` of the
 * `google.rpc.ErrorInfo` a gRPC caller receives, the `error_reason` of a `delegation.denied` audit event,
 * and (with `oauth`, the RFC 6749 / 8693 error code it maps to) the OAuth token endpoint's answer.
 * Reasons are never renamed or reused; docs/errors.md lists them, and a test keeps it complete.
 */
export const REFUSAL_REASONS = {
  UNKNOWN_APP: { oauth: 'invalid_target', meaning: 'the child app is not in the policy' },
  UNKNOWN_ENVIRONMENT: { oauth: 'invalid_target', meaning: 'the child app has no such environment' },
  ROOT_ONLY: {
    oauth: 'invalid_request',
    meaning: 'an IdP identity delegates at the root, never within an aoa token',
  },
  PARENT_REQUIRED: {
    oauth: 'invalid_grant',
    meaning: 'an app delegates only within the aoa token it presents',
  },
  ENVIRONMENT_CHANGE: {
    oauth: 'invalid_request',
    meaning: 'the environment cannot change down a chain (constraint `parent.env`)',
  },
  PARENT_EXPIRED: { oauth: 'invalid_grant', meaning: 'the presented aoa token has expired' },
  DEPTH_EXCEEDED: {
    oauth: 'invalid_grant',
    meaning: 'the presented token may not be delegated further (constraint `parent.aoa_max_depth`)',
  },
  INVALID_TTL: { oauth: 'invalid_request', meaning: 'ttl is negative or not a number' },
  NO_SCOPES: { oauth: 'invalid_scope', meaning: 'no scope was requested' },
  SCOPE_NOT_IN_PARENT: {
    oauth: 'invalid_scope',
    meaning: 'a scope is beyond the presented token (constraint `parent.scope`)',
  },
  AUDIENCE_NOT_OF_APP: {
    oauth: 'invalid_target',
    meaning: "an audience is not one of the app's (constraint `apps.<app>.audiences`)",
  },
  AUDIENCE_NOT_IN_PARENT: {
    oauth: 'invalid_target',
    meaning: 'an audience is beyond the presented token (constraint `parent.aud`)',
  },
  CONDITION_FAILED: {
    oauth: 'unauthorized_client',
    meaning: "a role's or rule's `when` condition on the token's claims did not hold",
  },
  NO_MATCHING_RULE: {
    oauth: 'unauthorized_client',
    meaning: 'no rule of any role the principal holds covers the child app and environment',
  },
  SCOPE_NOT_ALLOWED: { oauth: 'invalid_scope', meaning: 'the rule does not allow a requested scope' },
  HOLDER_KEY_REQUIRED: {
    oauth: 'invalid_request',
    meaning: 'the rule requires a key-bound token and no holder_jkt was sent',
  },
  TTL_EXCEEDED: {
    oauth: 'invalid_request',
    meaning:
      "ttl is beyond the rule's max_ttl, `limits.max_token_ttl` or the presented token's remaining life (the binding one is the constraint)",
  },
  MAY_ACT_MISMATCH: {
    oauth: 'unauthorized_client',
    meaning: "the subject token's may_act names another client",
  },
  MAY_NOT_PRESENT: {
    oauth: 'unauthorized_client',
    meaning: "the client's may_present does not list this IdP identity",
  },
  TOKEN_REVOKED: { oauth: 'invalid_grant', meaning: 'the presented token or an ancestor is revoked' },
  PROOF_REPLAYED: {
    oauth: 'invalid_request',
    meaning: 'the client assertion or DPoP proof jti was already used',
  },
  NO_FEDERATED_CLIENT: {
    oauth: 'invalid_client',
    meaning:
      "no federated client's `when` accepts the workload token (or more than one does and no client id was sent)",
  },
  WORKLOAD_TOKEN_TOO_OLD: {
    oauth: 'invalid_client',
    meaning: "the workload token was issued longer ago than the federated client's max_age",
  },
  UNTRUSTED_ISSUER: { oauth: 'invalid_request', meaning: "the subject token's issuer is not in the policy" },
  SUBJECT_TOKEN_INVALID: {
    oauth: 'invalid_request',
    meaning: 'the subject token failed verification (signature, issuer, audience, exp, algorithm)',
  },
  LEGACY_SERVICE_ACCOUNT_TOKEN: {
    oauth: 'invalid_request',
    meaning:
      'a Kubernetes secret-based service-account token (`iss: kubernetes/serviceaccount`), which never expires',
  },
  TOKEN_REVIEW_REJECTED: {
    oauth: 'invalid_request',
    meaning:
      "the cluster's TokenReview no longer accepts the service-account token (its pod or service account was deleted)",
  },
  GROUPS_OVERAGE: {
    oauth: 'invalid_request',
    meaning:
      'Entra ID left the groups out of the token (`_claim_names.groups` or `hasgroups`): configure the app registration',
  },
  SUBJECT_TOKEN_FROM_FUTURE: {
    oauth: 'invalid_request',
    meaning: "the subject token's iat is later than now plus the IdP's clock_skew",
  },
  NO_ATTESTED_GRANT: {
    oauth: 'invalid_grant',
    meaning: "no policy grant's `attest` names the pod's idp, namespace and service account",
  },
  ATTESTATION_REPLAYED: {
    oauth: 'invalid_grant',
    meaning: 'the service-account token already enrolled an agent: each token enrols once',
  },
  MALFORMED_REQUEST: {
    oauth: 'invalid_request',
    meaning: 'the gRPC request is not a valid protobuf of its message, or an integer in it exceeds 2^53 - 1',
  },
  METADATA_TOO_LARGE: {
    oauth: 'invalid_request',
    meaning: 'the gRPC request metadata exceeds 16 KiB (`constraint` names the limit)',
  },
} as const satisfies Record<string, { oauth: string; meaning: string }>;

export type RefusalReason = keyof typeof REFUSAL_REASONS;

/** The `domain` of every `google.rpc.ErrorInfo` aoa sends. */
export const ERROR_INFO_DOMAIN = 'aoa';
