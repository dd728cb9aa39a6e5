import { type AuditEnvelope, type Clock, type RevocationRecord, randomId } from '@aoa/core';
import { authorizeRevoke, type Caller, callerName, type TargetPlace } from './authority.js';
import { type CallerProof, type ProofContext, proveCaller } from './caller.js';
import { type RawRevokeRequest, type RevokeTarget, targetKey, validateRevokeRequest } from './target.js';

/** Writes revocations to KV `aoa_revocations`. */
export interface RevocationStore {
  /**
   * Absolute keys are created once (a repeat returns the record in force, `repeated: true`);
   * watermarks are overwritten with the newer time.
   */
  write(
    key: string,
    record: RevocationRecord,
    absolute: boolean,
  ): Promise<{ record: RevocationRecord; repeated: boolean }>;
}

/** The notice pushed on `aoa.revoked.<env>.<app>` (when known) and always on `aoa.revoked.all`. */
export interface RevocationNotice {
  revocation_id: string;
  key: string;
  kind: string;
  at_ms: number;
  environment: string;
  app: string;
}

export interface RevokerContext extends ProofContext {
  store: RevocationStore;
  /** Core-NATS publish of the notice; never throws (a missed notice is caught up from the bucket). */
  notify(notice: RevocationNotice, place: TargetPlace | undefined): void;
  /** Hands the audit event to the outbox; never throws and never waits for JetStream. */
  audit(type: string, subject: string, data: Record<string, unknown>): Promise<AuditEnvelope | undefined>;
  clock: Clock;
}

export interface RevokeResult {
  revocationId: string;
  atMs: number;
  key: string;
  repeated: boolean;
  caller: Caller;
}

/**
 * The one Revoke path: validate, prove the caller, check its authority, then write the KV entry first,
 * push the notice, and queue the audit event in the outbox. Idempotent: revoking an absolute target
 * twice answers the revocation already in force; an unknown jti is simply revoked.
 */
export async function revoke(
  ctx: RevokerContext,
  raw: RawRevokeRequest,
  proof: CallerProof,
): Promise<RevokeResult> {
  const { target, reason } = validateRevokeRequest(raw);
  const { caller, presented } = await proveCaller(ctx, proof);
  const place = authorizeRevoke(caller, target, presented);
  const { key, absolute } = targetKey(target);
  const by = callerName(caller);
  const proposed: RevocationRecord = {
    id: randomId(),
    at_ms: ctx.clock.nowMs(),
    reason,
    kind: target.kind,
    by,
  };
  const { record, repeated } = await ctx.store.write(key, proposed, absolute);
  ctx.notify(
    {
      revocation_id: record.id,
      key,
      kind: target.kind,
      at_ms: record.at_ms,
      environment: place?.environment ?? '',
      app: place?.app ?? '',
    },
    place,
  );
  await ctx.audit('revocation.issued', key, {
    revocation_id: record.id,
    key,
    kind: target.kind,
    at_ms: record.at_ms,
    reason,
    by,
    environment: place?.environment ?? '',
    app: place?.app ?? '',
    repeated,
    ...auditTarget(target),
  });
  return { revocationId: record.id, atMs: record.at_ms, key, repeated, caller };
}

/** The target in clear for the audit trail (the KV key hashes subjects). */
function auditTarget(target: RevokeTarget): Record<string, string> {
  switch (target.kind) {
    case 'jti':
      return { jti: target.jti };
    case 'grant':
      return { grant_id: target.grant };
    case 'kid':
      return { kid: target.kid };
    case 'sub':
      return { subject: target.subject };
    case 'app':
      return {};
  }
}
