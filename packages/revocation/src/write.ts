import {
  type AuditEnvelope,
  type AuditEventType,
  type Clock,
  type RevocationRecord,
  randomId,
} from '@aoa/core';
import type { TargetPlace } from './authority.js';
import { auditTarget, type RevokeTarget, targetKey } from './target.js';

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

/** What writing a revocation needs, whichever process (revoker, issuer) writes it. */
export interface RevocationWriteContext {
  store: RevocationStore;
  /**
   * Core-NATS publish of the notice, resolved once the server has taken it (a flush), so it leaves
   * ahead of the KV entry's JetStream delivery to every watcher; never throws (a missed notice is
   * caught up from the bucket).
   */
  notify(notice: RevocationNotice, place: TargetPlace | undefined): Promise<void>;
  /** Hands the audit event to the outbox; never throws and never waits for JetStream. */
  audit(
    type: AuditEventType,
    subject: string,
    data: Record<string, unknown>,
  ): Promise<AuditEnvelope | undefined>;
  clock: Clock;
}

export interface RevocationWrite {
  target: RevokeTarget;
  reason: string;
  /** Who revokes, as records and audit name it: `client:<id>`, `jkt:<thumbprint>` or `operator:<sub>`. */
  by: string;
  /** Where the revoked token lives, for the notice subject; undefined when unknown. */
  place: TargetPlace | undefined;
}

export interface WrittenRevocation {
  revocationId: string;
  atMs: number;
  key: string;
  repeated: boolean;
}

/**
 * The one write path of a revocation, after the caller's authority is settled: the notice first, so
 * it reaches every verifier ahead of the KV entry's JetStream delivery to each watcher (ADR 5); then
 * the KV entry (absolute targets by create, so a repeat answers the revocation in force; watermarks
 * never move back); then the `revocation.issued` audit event through the outbox. A notice whose write
 * then fails leaves verifiers refusing more than the bucket says, never less, and the caller sees the
 * error. Audit never blocks or fails a revocation.
 *
 * @example
 * const written = await writeRevocation(ctx, { target: { kind: 'jti', jti }, reason: '', by, place });
 */
export async function writeRevocation(
  ctx: RevocationWriteContext,
  { target, reason, by, place }: RevocationWrite,
): Promise<WrittenRevocation> {
  const { key, absolute } = targetKey(target);
  const proposed: RevocationRecord = {
    id: randomId(),
    at_ms: ctx.clock.nowMs(),
    reason,
    kind: target.kind,
    by,
  };
  const where = { environment: place?.environment ?? '', app: place?.app ?? '' };
  await ctx.notify(
    { revocation_id: proposed.id, key, kind: target.kind, at_ms: proposed.at_ms, ...where },
    place,
  );
  const { record, repeated } = await ctx.store.write(key, proposed, absolute);
  await ctx.audit('revocation.issued', key, {
    revocation_id: record.id,
    key,
    kind: target.kind,
    at_ms: record.at_ms,
    reason,
    by,
    ...where,
    repeated,
    ...auditTarget(target),
  });
  return { revocationId: record.id, atMs: record.at_ms, key, repeated };
}
