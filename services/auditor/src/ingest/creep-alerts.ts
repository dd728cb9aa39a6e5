import type { AuditPublisher, Clock, Logger } from '@aoa/core';
import { CREEP_ALERT_TYPE } from '../domain/creep.js';
import type { CreepStore } from '../store/creep-store.js';

const PAGE = 100;

/**
 * Publishes queued `alert.privilege_creep` events onto `AOA_AUDIT`, so each alert is itself chained.
 * The outbox row is marked only after JetStream acknowledges; the alert's fixed id lets JetStream drop
 * a repeat after a crash between the two. Never throws: what fails is retried on the next call.
 */
export class CreepAlertOutbox {
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: CreepStore,
    private readonly audit: AuditPublisher,
    private readonly source: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Publishes what is queued; a call while one runs waits for it instead of starting another. */
  flush(): Promise<void> {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const alerts = await this.store.unpublished(PAGE);
        for (const alert of alerts) {
          await this.audit.publishEnvelope({
            id: alert.id,
            type: CREEP_ALERT_TYPE,
            time: new Date(this.clock.nowMs()).toISOString(),
            source: this.source,
            subject: alert.subject,
            data: alert.data,
          });
          await this.store.markPublished(alert.id);
          this.log.warn(
            { alert: alert.id, subject: alert.subject, grew: alert.data.grew, rule: alert.data.rule },
            'privilege creep',
          );
        }
        if (alerts.length < PAGE) return;
      }
    } catch (error) {
      this.log.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'creep alerts not published yet',
      );
    }
  }
}
