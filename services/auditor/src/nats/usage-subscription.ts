import { deliveredByJetStream, type Logger, type Subjects } from '@aoa/core';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { parseUsageReport } from '../domain/usage.js';
import type { AuditorMetrics } from '../metrics.js';
import type { UsageStore } from '../store/usage-store.js';

/**
 * Stores the verifiers' scope usage reports (`<prefix>.usage.>`, queue group `auditor-usage`, so one
 * auditor instance takes each). A malformed report is counted and logged, never stored; a store
 * failure is counted and logged (usage is advisory: a lost report only makes a scope look unused).
 */
export function serveUsageReports(
  nc: NatsConnection,
  subjects: Subjects,
  usage: UsageStore,
  metrics: AuditorMetrics,
  log: Logger,
): Subscription {
  const usageLog = log.child({ component: 'usage' });
  return nc.subscribe(subjects.usageAll(), {
    queue: 'auditor-usage',
    callback: (error, msg) => {
      if (error) {
        usageLog.warn({ err: error.message }, 'usage subscription error');
        return;
      }
      if (deliveredByJetStream(msg)) {
        metrics.usageReports.inc({ result: 'refused' });
        usageLog.warn({ subject: msg.subject }, 'ignoring a usage report delivered by JetStream');
        return;
      }
      const report = parseUsageReport(msg.string(), msg.subject, subjects.prefix);
      if (typeof report === 'string') {
        metrics.usageReports.inc({ result: 'refused' });
        usageLog.warn({ subject: msg.subject, reason: report }, 'ignoring a malformed usage report');
        return;
      }
      usage.record(report).then(
        () => metrics.usageReports.inc({ result: 'stored' }),
        (failure: unknown) => {
          metrics.usageReports.inc({ result: 'failed' });
          usageLog.warn(
            { err: failure instanceof Error ? failure.message : String(failure), subject: msg.subject },
            'usage report not stored',
          );
        },
      );
    },
  });
}
