import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** The revoker's Prometheus metrics, on one registry per instance (tests run several in one process). */
export class RevokerMetrics {
  readonly registry = new Registry();
  readonly revocations = new Counter({
    name: 'aoa_revoker_revocations_total',
    help: 'Revoke outcomes by target kind and result code',
    labelNames: ['kind', 'code'] as const,
    registers: [this.registry],
  });
  readonly outboxPending = new Gauge({
    name: 'aoa_revoker_audit_outbox_pending',
    help: 'Revocation audit events waiting for a JetStream acknowledgement',
    registers: [this.registry],
  });
  readonly outboxDelivered = new Counter({
    name: 'aoa_revoker_audit_outbox_delivered_total',
    help: 'Revocation audit events acknowledged by JetStream',
    registers: [this.registry],
  });
  readonly outboxFailures = new Counter({
    name: 'aoa_revoker_audit_outbox_failures_total',
    help: 'Outbox delivery rounds stopped by a refusal or an unreachable stream',
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
