import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The auditor's Prometheus metrics, on one registry per instance (tests run several in one process). */
export class AuditorMetrics {
  readonly registry = new Registry();
  readonly stored = new Counter({
    name: 'aoa_auditor_events_stored_total',
    help: 'Audit events committed to the store',
    registers: [this.registry],
  });
  readonly markers = new Counter({
    name: 'aoa_auditor_marker_rows_total',
    help: 'Marker rows chained for late duplicates and dead-lettered messages',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly writeFailures = new Counter({
    name: 'aoa_auditor_write_failures_total',
    help: 'Batches the store refused (retried; nothing acknowledged)',
    registers: [this.registry],
  });
  readonly usageReports = new Counter({
    name: 'aoa_auditor_usage_reports_total',
    help: 'Scope usage reports from verifiers, by result (stored, refused, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly checkpoints = new Counter({
    name: 'aoa_auditor_checkpoints_total',
    help: 'Signed checkpoints published',
    registers: [this.registry],
  });
  readonly checkpointFailures = new Counter({
    name: 'aoa_auditor_checkpoint_failures_total',
    help: 'Checkpoints that could not be published or stored',
    registers: [this.registry],
  });
  readonly headSeq = new Gauge({
    name: 'aoa_auditor_chain_head_seq',
    help: 'Stream sequence of the last committed row',
    registers: [this.registry],
  });
  readonly writer = new Gauge({
    name: 'aoa_auditor_active_writer',
    help: '1 while this instance holds the writer lease',
    registers: [this.registry],
  });
  readonly backlog = new Gauge({
    name: 'aoa_auditor_backlog_messages',
    help: 'Audit events in AOA_AUDIT not yet delivered to the writer, as of its last batch',
    registers: [this.registry],
  });
  readonly lag = new Histogram({
    name: 'aoa_auditor_ingest_lag_seconds',
    help: 'From JetStream acceptance to commit in the store',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
