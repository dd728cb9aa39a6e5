/**
 * Every audit event type, `noun.outcome`, defined once: services publish only these (the publisher's
 * signature says so), the auditor stores only these and dead-letters anything else. Each payload is a
 * message in `proto/aoa/v1/events.proto` (named beside each type below).
 */
export const AUDIT_EVENT_TYPES = [
  'delegation.issued', // DelegationIssued
  'delegation.denied', // DelegationDenied
  'grant.created', // GrantEvent
  'grant.updated', // GrantEvent
  'grant.deleted', // GrantEvent
  'grant.restored', // GrantEvent
  'grant.minted', // GrantMinted
  'credential.delivered', // CredentialDelivered
  'join_token.created', // JoinTokenCreated
  'agent.enrolled', // AgentEvent
  'agent.removed', // AgentEvent
  'key.prepared', // KeyEvent
  'key.activated', // KeyEvent
  'key.retired', // KeyEvent
  'key.unpublished', // KeyEvent
  'key.rotation.started', // KeyRotation
  'key.rotation.completed', // KeyRotation
  'policy.loaded', // PolicyLoaded
  'policy.rejected', // PolicyRejected
  'revocation.issued', // RevocationIssued
  'alert.privilege_creep', // PrivilegeCreepAlert
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

const KNOWN: ReadonlySet<string> = new Set(AUDIT_EVENT_TYPES);

/** Whether `type` is one of {@link AUDIT_EVENT_TYPES}. */
export const isAuditEventType = (type: string): type is AuditEventType => KNOWN.has(type);
