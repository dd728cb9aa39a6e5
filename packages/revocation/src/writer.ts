import { type AuditPublisher, type Clock, type Logger, openBucket, type Subjects } from '@aoa/core';
import type { KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { AuditOutbox, type OutboxMetrics } from './audit-outbox.js';
import { KvRevocationStore } from './kv-store.js';
import { fulfilledWithin } from './within.js';
import type { RevocationWriteContext } from './write.js';

/** The outbox of revocation audit events not yet acknowledged by JetStream, shared by every writer. */
export const OUTBOX_BUCKET = 'aoa_revoker_outbox';

export interface RevocationWriterOptions {
  nc: NatsConnection;
  kvm: Kvm;
  /** KV `aoa_revocations`, opened (and its max age checked) by the caller. */
  revocationsKv: KV;
  subjects: Subjects;
  audit: AuditPublisher;
  metrics: OutboxMetrics;
  clock: Clock;
  log: Logger;
  /** How long an undelivered event is kept: the audit stream's max age. */
  outboxMaxAgeSeconds: number;
  /** How often the outbox retries what JetStream has not acknowledged. */
  retryMs: number;
  /** Replicas of the outbox bucket on a NATS cluster (1, 3 or 5). */
  replicas: number;
}

export interface RevocationWriter {
  ctx: RevocationWriteContext;
  /** Audit events still waiting for JetStream. */
  pending(): number;
  /** Stops the outbox drainer; call before the NATS connection closes. */
  stop(): Promise<void>;
}

/**
 * Opens everything a process needs to write revocations (the revoker, and the issuer's RFC 7009
 * endpoint): the KV store, the notice publisher and the audit outbox, whose drainer starts here and
 * runs in every writing process, so an event one process queued is delivered by it or by any other.
 *
 * @example
 * const writer = await openRevocationWriter({ nc, kvm, revocationsKv, subjects, audit, metrics, clock, log,
 *   outboxMaxAgeSeconds: 86_400, retryMs: 1000, replicas: 1 });
 * await writeRevocation(writer.ctx, { target, reason, by, place });
 */
export async function openRevocationWriter(options: RevocationWriterOptions): Promise<RevocationWriter> {
  const { nc, subjects, log } = options;
  const outboxKv = await openBucket(options.kvm, OUTBOX_BUCKET, {
    replicas: options.replicas,
    maxAgeMs: options.outboxMaxAgeSeconds * 1000,
  });
  const outbox = new AuditOutbox(outboxKv, options.audit, options.metrics, log, options.retryMs);
  outbox.start();
  const ctx: RevocationWriteContext = {
    store: new KvRevocationStore(options.revocationsKv),
    clock: options.clock,
    notify: async (notice, place) => {
      try {
        const body = JSON.stringify(notice);
        if (place) nc.publish(subjects.revoked(place.environment, place.app), body);
        nc.publish(subjects.revokedAll(), body);
        // Disconnected, the flush is never answered: the write goes ahead after the wait regardless.
        await fulfilledWithin(nc.flush(), NOTICE_FLUSH_MS);
      } catch (error) {
        log.warn({ err: error, key: notice.key }, 'revocation notice not published; the bucket still has it');
      }
    },
    audit: async (type, subject, data) => {
      try {
        return await outbox.enqueue(type, subject, data);
      } catch (error) {
        log.error({ err: error, subject }, 'revocation audit event could not be queued');
        return undefined;
      }
    },
  };
  return { ctx, pending: () => outbox.pending(), stop: () => outbox.stop() };
}

/** How long a revocation waits for its notice to reach the server before writing regardless. */
const NOTICE_FLUSH_MS = 500;
