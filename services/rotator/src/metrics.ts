import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The rotator's Prometheus metrics, on one registry per instance (tests run several in one process). */
export class RotatorMetrics {
  readonly registry = new Registry();
  readonly calls = new Counter({
    name: 'aoa_rotator_calls_total',
    help: 'Rotator gRPC calls by method and result code',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly rotations = new Counter({
    name: 'aoa_rotator_rotations_total',
    help: 'Grant rotations by result (ok, refused, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'aoa_rotator_deliveries_total',
    help: 'Encrypted credentials published to AOA_CREDS',
    registers: [this.registry],
  });
  readonly loopErrors = new Counter({
    name: 'aoa_rotator_loop_errors_total',
    help: 'Rotation scans that failed as a whole (the loop carries on)',
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'aoa_rotator_policy_reconciles_total',
    help: 'Runs bringing aoa_grants in line with the policy grants, by result (ok, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly rotationLag = new Histogram({
    name: 'aoa_rotator_rotation_lag_seconds',
    help: 'How late after its due time a grant was rotated (due at about half its token TTL)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly maxLag = new Gauge({
    name: 'aoa_rotator_max_rotation_lag_seconds',
    help: 'The latest any grant ticked by this replica was rotated in its last scan (alert near half a TTL)',
    registers: [this.registry],
  });
  readonly grantsHeld = new Gauge({
    name: 'aoa_rotator_grants_ticked',
    help: 'Grants this replica ticked in its last scan',
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
