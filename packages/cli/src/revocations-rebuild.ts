import { BUCKETS, type RevocationRecord } from '@aoa/core';
import { type events, auditor as pb } from '@aoa/proto';
import { KvRevocationStore } from '@aoa/revocation';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { queryAuditor } from './audit.js';
import type { ServiceCaller } from './caller.js';

/** Where rebuilding reads and writes: the auditor's store, and NATS holding `aoa_revocations`. */
export interface RebuildTarget {
  auditor: ServiceCaller;
  nats: { url: string; user?: string | undefined; pass?: string | undefined };
}

export interface RebuildReport {
  /** `revocation.issued` events read from the audit store. */
  events: number;
  /** Entries written back because the bucket had lost them. */
  restored: string[];
  /** Entries the bucket still held (a watermark as late or later counts as present). */
  present: number;
  /** Entries older than the bucket's max age: they would have aged out anyway. */
  expired: number;
  /** Events whose data is not a revocation record (reported, never written). */
  malformed: number;
}

const ABSOLUTE = new Set(['jti', 'grant', 'kid']);
const KEY = /^(jti|grant|kid|app|sub)\.[A-Za-z0-9_=.-]+$/;

/** The KV entry a `revocation.issued` event recorded, or undefined when its data is not one. */
export function recordOf(event: events.AuditEvent): { key: string; record: RevocationRecord } | undefined {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const { key, kind, at_ms, revocation_id, reason, by } = d;
  if (typeof key !== 'string' || !KEY.test(key) || typeof kind !== 'string') return undefined;
  if (typeof at_ms !== 'number' || !Number.isSafeInteger(at_ms) || typeof revocation_id !== 'string')
    return undefined;
  return {
    key,
    record: {
      id: revocation_id,
      at_ms,
      kind,
      reason: typeof reason === 'string' ? reason : '',
      by: typeof by === 'string' ? by : '',
    },
  };
}

/**
 * Rebuilds KV `aoa_revocations` from the audit store after the bucket was lost (a NATS disaster with
 * no replica): every `revocation.issued` event younger than the bucket's max age is written back with
 * its original record, through the revoker's own write rules (absolute entries created once,
 * watermarks never moved back), so running it twice, or against a live bucket, changes nothing.
 */
export async function rebuildRevocations(
  target: RebuildTarget,
  options: { dryRun: boolean; nowMs: number },
): Promise<RebuildReport> {
  const nc = await connect({
    servers: target.nats.url,
    user: target.nats.user,
    pass: target.nats.pass,
    reconnect: false,
  });
  try {
    const kv = await new Kvm(nc).open(BUCKETS.revocations);
    const maxAgeMs = (await kv.status()).ttl || Number.POSITIVE_INFINITY;
    const store = new KvRevocationStore(kv);
    const report: RebuildReport = { events: 0, restored: [], present: 0, expired: 0, malformed: 0 };
    let pageToken = '';
    for (;;) {
      const page = await queryAuditor(
        target.auditor,
        pb.QueryRequest.fromPartial({ types: ['revocation.issued'], limit: 10_000, pageToken }),
      );
      for (const event of page) {
        report.events++;
        const found = recordOf(event);
        if (!found) report.malformed++;
        else if (found.record.at_ms + maxAgeMs <= options.nowMs) report.expired++;
        else if (options.dryRun) {
          const entry = await kv.get(found.key);
          if (entry?.operation === 'PUT') report.present++;
          else report.restored.push(found.key);
        } else {
          const written = await store.write(found.key, found.record, ABSOLUTE.has(found.record.kind ?? ''));
          if (written.repeated) report.present++;
          else report.restored.push(found.key);
        }
      }
      const last = page.at(-1);
      if (page.length < 10_000 || !last) break;
      pageToken = last.id;
    }
    return report;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** What `aoa revocations rebuild` prints. */
export function formatRebuild(r: RebuildReport, dryRun: boolean): string {
  return [
    `${r.events} revocation events in the audit store`,
    `  ${dryRun ? 'missing (would restore)' : 'restored'}  ${r.restored.length}`,
    `  present   ${r.present}`,
    `  expired   ${r.expired} (older than the bucket's max age)`,
    ...(r.malformed > 0 ? [`  malformed ${r.malformed} (not written)`] : []),
    ...r.restored.map((key) => `  ${dryRun ? 'missing' : 'restored'}: ${key}`),
    '',
  ].join('\n');
}
