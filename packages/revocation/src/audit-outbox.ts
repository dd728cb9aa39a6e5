import type { AuditEnvelope, AuditEventType, AuditPublisher, Logger } from '@aoa/core';
import type { KV } from '@nats-io/kv';

/** The counters an outbox reports to (each process names its own metrics). */
export interface OutboxMetrics {
  outboxPending: { set(value: number): void };
  outboxDelivered: { inc(): void };
  outboxFailures: { inc(): void };
}

/**
 * Revocation audit events wait here until JetStream acknowledges them, so revocation is never blocked
 * by audit. Pending events live in a KV bucket (`aoa_revoker_outbox`, file storage, shared by every process that writes revocations), not in memory or
 * on a local disk: they survive a restart of this process, any replica drains what another left, and
 * the bucket shares the fate of `aoa_revocations` (if NATS is down, nothing was revoked either). An
 * event is deleted only after its acknowledgement; redelivery after a crash is deduplicated by
 * `Nats-Msg-Id` (the event id) within the stream's 2-minute window. If even the outbox write fails,
 * the event is kept in memory and retried the same way.
 */
export class AuditOutbox {
  private readonly memory = new Map<string, AuditEnvelope>();
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private stopped = false;
  private pendingCount = 0;

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
   * Stops retrying and waits (bounded) for a round in flight: its key listing is a JetStream consumer
   * that would outlive a connection closed under it and keep the process alive.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.draining) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.draining,
      new Promise((resolve) => {
        timer = setTimeout(resolve, STOP_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Stores the event, then tries to deliver it at once; never throws. */
  async enqueue(
    type: AuditEventType,
    subject: string,
    data: Record<string, unknown>,
  ): Promise<AuditEnvelope> {
    const event = this.audit.envelope(type, subject, data);
    try {
      await this.kv.put(outboxKey(event.id), JSON.stringify(event));
    } catch (error) {
      this.log.error(
        { err: error, eventId: event.id },
        'audit outbox write failed; holding the event in memory',
      );
      this.memory.set(event.id, event);
    }
    this.setPending(this.pendingCount + 1);
    void this.drain();
    return event;
  }

  /** Events not yet acknowledged, as last counted. */
  pending(): number {
    return this.pendingCount;
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
      const keys: string[] = [];
      for await (const key of await this.kv.keys('evt.>')) keys.push(key);
      this.setPending(keys.length + this.memory.size);
      for (const key of keys) {
        const entry = await this.kv.get(key);
        if (entry?.operation !== 'PUT') continue;
        await this.audit.publishEnvelope(entry.json<AuditEnvelope>());
        await this.kv.delete(key);
        this.metrics.outboxDelivered.inc();
        this.setPending(this.pendingCount - 1);
      }
    } catch (error) {
      this.metrics.outboxFailures.inc();
      this.log.debug(
        { err: error instanceof Error ? error.message : String(error) },
        'audit outbox round stopped',
      );
    }
  }

  private setPending(n: number): void {
    this.pendingCount = Math.max(0, n);
    this.metrics.outboxPending.set(this.pendingCount);
  }
}

/** How long `stop()` waits for a delivery round in flight. */
const STOP_WAIT_MS = 2000;

const outboxKey = (eventId: string): string => `evt.${eventId}`;
