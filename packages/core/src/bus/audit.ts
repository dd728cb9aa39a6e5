import type { JetStreamManager } from '@nats-io/jetstream';
import type { AuditEventType } from '../audit-types.js';
import { AppError } from '../errors.js';
import { randomId } from '../ids.js';
import type { Logger } from '../logger.js';
import { STREAMS, type Subjects } from '../subjects.js';
import type { StreamPublish } from './stream-publisher.js';

/** The audit envelope of `events.proto`, as it travels (proto3 JSON). */
export interface AuditEnvelope {
  id: string;
  type: string;
  time: string;
  source: string;
  subject: string;
  data: Record<string, unknown>;
}

/**
 * The most bytes and events {@link AuditPublisher.publishAll} puts in one message, and the most the
 * auditor accepts in one: a quarter of NATS's default `max_payload`.
 */
export const AUDIT_BATCH_MAX_BYTES = 256 * 1024;
export const AUDIT_BATCH_MAX_EVENTS = 1024;

/** The body of a message on `aoa.audit.batch` is `{"events":[envelope, ...]}`, at least one. */
const BATCH_OPEN = '{"events":[';
const BATCH_CLOSE = ']}';
const BATCH_OVERHEAD = BATCH_OPEN.length + BATCH_CLOSE.length;

export interface AuditStreamOptions {
  /** Seconds events are kept; default 30 days. */
  maxAgeSeconds: number;
  /** Bytes before the stream refuses new events (discard new: fail closed). */
  maxBytes: number;
  /** Replicas on a NATS cluster (1, 3 or 5); fixed when the stream is created. */
  replicas: number;
}

export const DEFAULT_AUDIT_STREAM: AuditStreamOptions = {
  maxAgeSeconds: 30 * 86400,
  maxBytes: 8 * 1024 ** 3,
  replicas: 1,
};

/**
 * Creates `AOA_AUDIT` with the contract's settings from the start (2.9 cannot change retention later);
 * when it exists, adjusts only what may change (age and size).
 */
export async function ensureAuditStream(
  jsm: JetStreamManager,
  subjects: Subjects,
  options: AuditStreamOptions = DEFAULT_AUDIT_STREAM,
): Promise<void> {
  const config = {
    name: STREAMS.audit,
    subjects: [subjects.auditAll()],
    retention: 'limits' as const,
    storage: 'file' as const,
    discard: 'new' as const,
    max_age: options.maxAgeSeconds * 1e9,
    max_bytes: options.maxBytes,
    duplicate_window: 120 * 1e9,
    deny_delete: true,
    deny_purge: true,
    num_replicas: options.replicas,
  };
  try {
    const info = await jsm.streams.info(STREAMS.audit);
    if (info.config.max_age !== config.max_age || info.config.max_bytes !== config.max_bytes) {
      await jsm.streams.update(STREAMS.audit, {
        ...info.config,
        max_age: config.max_age,
        max_bytes: config.max_bytes,
      });
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // Replicas started together all find no stream: the ones that lose the race to add it use the
    // winner's (the server answers them "subjects overlap" or "name already in use").
    await jsm.streams.add(config).catch(async (addError: unknown) => {
      await jsm.streams.info(STREAMS.audit).catch(() => {
        throw addError;
      });
    });
  }
}

const isNotFound = (error: unknown): boolean =>
  error instanceof Error && /not found/i.test(error.message) && !/no responders/i.test(error.message);

/** The audit stream did not acknowledge: the caller gets no credential, and nothing else to audit. */
export class AuditUnavailable extends AppError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('unavailable', message, options);
  }
}

/**
 * Publishes audit events and waits for JetStream's acknowledgement: the fail-closed gate. A missing
 * acknowledgement (NATS down, stream full, timeout) is `unavailable`, and the caller gets no credential.
 *
 * @example
 * await audit.publish('delegation.issued', jti, { jti, sub, child });
 */
export class AuditPublisher {
  /** `js` should be a {@link StreamPublisher} where events are on a hot path; `jetstream(nc)` works too. */
  constructor(
    private readonly js: StreamPublish,
    private readonly subjects: Subjects,
    private readonly source: string,
    private readonly log: Logger,
    private readonly timeoutMs = 2000,
  ) {}

  envelope(type: AuditEventType, subject: string, data: Record<string, unknown>): AuditEnvelope {
    return { id: randomId(), type, time: new Date().toISOString(), source: this.source, subject, data };
  }

  /** Publishes a new event; resolves once it is stored (nothing of the event is held meanwhile). */
  publish(type: AuditEventType, subject: string, data: Record<string, unknown>): Promise<void> {
    return this.publishEnvelope(this.envelope(type, subject, data));
  }

  publishEnvelope(event: AuditEnvelope): Promise<void> {
    return this.send(this.subjects.audit(event.type), JSON.stringify(event), event.id, event.type);
  }

  /**
   * Publishes events together: as few messages on `aoa.audit.batch` as {@link AUDIT_BATCH_MAX_BYTES}
   * and {@link AUDIT_BATCH_MAX_EVENTS} allow (one JetStream acknowledgement each, not one per event;
   * a lone event goes on its own subject, as {@link publishEnvelope} sends it); resolves once every one is
   * stored, and any one unacknowledged rejects (fail closed). The auditor stores each event as its own
   * row, in this order.
   */
  publishAll(events: readonly AuditEnvelope[]): Promise<void> {
    const sent: Array<Promise<void>> = [];
    let group: Array<{ event: AuditEnvelope; json: string }> = [];
    let bytes = BATCH_OVERHEAD;
    const flush = () => {
      const [first] = group;
      if (first === undefined) return;
      sent.push(
        group.length === 1
          ? this.send(this.subjects.audit(first.event.type), first.json, first.event.id, first.event.type)
          : this.send(
              this.subjects.auditBatch(),
              `${BATCH_OPEN}${group.map((g) => g.json).join(',')}${BATCH_CLOSE}`,
              first.event.id,
              'batch',
            ),
      );
      group = [];
      bytes = BATCH_OVERHEAD;
    };
    for (const event of events) {
      const json = JSON.stringify(event);
      const size = Buffer.byteLength(json) + 1;
      if (bytes + size > AUDIT_BATCH_MAX_BYTES || group.length === AUDIT_BATCH_MAX_EVENTS) flush();
      group.push({ event, json });
      bytes += size;
    }
    flush();
    return Promise.all(sent).then(() => undefined);
  }

  private send(subject: string, payload: string, msgID: string, eventType: string): Promise<void> {
    return this.js.publish(subject, payload, { msgID, timeout: this.timeoutMs }).then(
      () => undefined,
      (error: unknown) => {
        this.log.warn({ err: summarize(error), eventType, eventId: msgID }, 'audit publish failed');
        throw new AuditUnavailable('audit log unavailable: request refused (fail closed)', {
          cause: error,
        });
      },
    );
  }
}

const summarize = (error: unknown): string => (error instanceof Error ? error.message : String(error));
