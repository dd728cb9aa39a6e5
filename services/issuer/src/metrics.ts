import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The issuer's Prometheus metrics, on one registry per instance (tests run several in one process). */
export class IssuerMetrics {
  readonly registry = new Registry();
  readonly delegations = new Counter({
    name: 'aoa_issuer_delegations_total',
    help: 'Delegate outcomes by result and error code',
    labelNames: ['outcome', 'code'] as const,
    registers: [this.registry],
  });
  readonly delegateSeconds = new Histogram({
    name: 'aoa_issuer_delegate_seconds',
    help: 'Delegate latency, caller proof to audited answer',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly introspections = new Counter({
    name: 'aoa_issuer_introspections_total',
    help: 'Introspect answers by result',
    labelNames: ['active'] as const,
    registers: [this.registry],
  });
  readonly tokenRequests = new Counter({
    name: 'aoa_issuer_token_requests_total',
    help: 'Token endpoint answers by outcome and OAuth error code',
    labelNames: ['outcome', 'error'] as const,
    registers: [this.registry],
  });
  readonly tokenRateLimited = new Counter({
    name: 'aoa_issuer_token_rate_limited_total',
    help: 'Token requests refused with 429, by the bucket that was empty (client or source)',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });
  readonly tokenSeconds = new Histogram({
    name: 'aoa_issuer_token_seconds',
    help: 'Token endpoint latency, body read to answer',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly policyLoads = new Counter({
    name: 'aoa_issuer_policy_loads_total',
    help: 'Policy loads by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly revocations = new Counter({
    name: 'aoa_issuer_revocations_total',
    help: 'RFC 7009 revocation requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly outboxPending = new Gauge({
    name: 'aoa_issuer_audit_outbox_pending',
    help: 'Revocation audit events waiting for a JetStream acknowledgement',
    registers: [this.registry],
  });
  readonly outboxDelivered = new Counter({
    name: 'aoa_issuer_audit_outbox_delivered_total',
    help: 'Revocation audit events acknowledged by JetStream',
    registers: [this.registry],
  });
  readonly outboxFailures = new Counter({
    name: 'aoa_issuer_audit_outbox_failures_total',
    help: 'Outbox delivery rounds stopped by a refusal or an unreachable stream',
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
