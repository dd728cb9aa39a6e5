import type { AuditEnvelope, AuditEventType, AuditPublisher, Logger } from '@aoa/core';
import type { KV } from '@nats-io/kv';
import { fulfilledWithin } from './within.js';

/** The counters an outbox reports to (each process names its own metrics). */
export interface OutboxMetrics {
  outboxPending: { set(value: number): void };
  outboxDelivered: { inc(): void };
  outboxFailures: { inc(): void };
}

type OutboxWatch = Awaited<ReturnType<KV['watch']>>;

/**
 * Revocation audit events JetStream has not acknowledged at once wait here until it does, so revocation
 * is never blocked by audit. Pending events live in a KV bucket (`aoa_revoker_outbox`, file storage, shared by every
 * process that writes revocations), not in memory or on a local disk: they survive a restart of this
 * process, any replica drains what another left, and the bucket shares the fate of `aoa_revocations`
 * (if NATS is down, nothing was revoked either). An event is deleted only after its acknowledgement;
 * redelivery after a crash is deduplicated by `Nats-Msg-Id` (the event id) within the stream's
 * 2-minute window. If even the outbox write fails, the event is kept in memory and retried the same way.
 *
 * The pending keys come from one KV watch held for the outbox's life, which also reports what other
 * processes write and delete; listing the keys every round would create a JetStream consumer each
 * time, and nats.js leaves each one on the server for its 5-minute inactive threshold.
 *
 * @example
 * const outbox = new AuditOutbox(outboxKv, audit, metrics, log, 1000);
 * outbox.start();
 * await outbox.enqueue('revocation.issued', jti, { jti, revocation_id });
 * await outbox.stop();
 */
export class AuditOutbox {
  private readonly memory = new Map<string, AuditEnvelope>();
  /** Live keys of the bucket: those written here at once, and any process's as the watch reports them. */
  private readonly keys = new Set<string>();
  private watch: OutboxWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    private readonly audit: AuditPublisher,
    private readonly metrics: OutboxMetrics,
    private readonly log: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** Drains what a previous process left, then keeps retrying every `retryMs`. */
  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.drain().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.retryMs);
      });
    };
    tick();
  }

  /**
   * Stops retrying, waits (bounded) for a round in flight, then closes the watch (its ordered
   * consumer expires on the server after its inactive threshold, as every watch's does).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await fulfilledWithin(this.draining ?? Promise.resolve(), STOP_WAIT_MS);
    this.closeWatch();
  }

  /**
   * Publishes the event at once and returns when JetStream acknowledges it within
   * {@link DIRECT_DELIVERY_MS}; otherwise stores it and has it retried. Never throws. In the common
   * case a revocation costs one audit publish, and no outbox write, read and delete.
   */
  async enqueue(
    type: AuditEventType,
    subject: string,
    data: Record<string, unknown>,
  ): Promise<AuditEnvelope> {
    const event = this.audit.envelope(type, subject, data);
    if (await fulfilledWithin(this.audit.publishEnvelope(event), DIRECT_DELIVERY_MS)) return event;
    try {
      await this.kv.put(outboxKey(event.id), JSON.stringify(event));
      this.keys.add(outboxKey(event.id));
    } catch (error) {
      this.log.error(
        { err: error, eventId: event.id },
        'audit outbox write failed; holding the event in memory',
      );
      this.memory.set(event.id, event);
    }
    this.countPending();
    void this.drain();
    return event;
  }

  /** Events not yet acknowledged: the bucket's live keys as this process knows them, and any held in memory. */
  pending(): number {
    return this.keys.size + this.memory.size;
  }

  /** One delivery round; concurrent calls share it. Stops at the first refusal and waits for the next tick. */
  drain(): Promise<void> {
    this.draining ??= this.deliverAll().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async deliverAll(): Promise<void> {
    try {
      for (const [id, event] of this.memory) {
        await this.audit.publishEnvelope(event);
        this.memory.delete(id);
        this.metrics.outboxDelivered.inc();
      }
      await this.openWatch();
      for (const key of [...this.keys]) {
        const entry = await this.kv.get(key);
        if (entry?.operation === 'PUT') {
          await this.audit.publishEnvelope(entry.json<AuditEnvelope>());
          await this.kv.delete(key);
          this.metrics.outboxDelivered.inc();
        }
        // Delivered, or already deleted or expired (the watch may report a key after its deletion).
        this.keys.delete(key);
        this.countPending();
      }
    } catch (error) {
      this.metrics.outboxFailures.inc();
      this.log.debug(
        { err: error instanceof Error ? error.message : String(error) },
        'audit outbox round stopped',
      );
    } finally {
      this.countPending();
    }
  }

  /** Opens the watch unless it is open: at the first round, and again if it ever ended. */
  private async openWatch(): Promise<void> {
    if (this.watch || this.stopped) return;
    const watch = await this.kv.watch({ key: 'evt.>', headers_only: true });
    this.watch = watch;
    void this.follow(watch);
    if (this.stopped) this.closeWatch();
  }

  /** Keeps `keys` in step with the bucket: its live keys first, then every write and delete. */
  private async follow(watch: OutboxWatch): Promise<void> {
    try {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') this.keys.add(entry.key);
        else this.keys.delete(entry.key);
        this.countPending();
      }
    } catch (error) {
      this.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'audit outbox watch ended; reopening at the next round',
      );
    }
    if (this.watch === watch) this.watch = undefined;
  }

  private closeWatch(): void {
    this.watch?.stop();
    this.watch = undefined;
  }

  private countPending(): void {
    this.metrics.outboxPending.set(this.pending());
  }
}

/**
 * How long a revocation waits for its audit event's acknowledgement before storing the event in the
 * outbox instead (a publish still in flight then is deduplicated by its `Nats-Msg-Id` if it lands).
 */
const DIRECT_DELIVERY_MS = 100;

/** How long `stop()` waits for a delivery round in flight. */
const STOP_WAIT_MS = 2000;

const outboxKey = (eventId: string): string => `evt.${eventId}`;
