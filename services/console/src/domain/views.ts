import type { events, rotator } from '@aoa/proto';

/** A standing grant as the console shows it: when it last rotated, when it should next, and its agents' deliveries. */
export interface GrantRow {
  grant: rotator.Grant;
  lastRotation: string | undefined;
  /** About when the rotator should mint next: half the token TTL after the last mint (it adds ±10% jitter). */
  nextRotation: string | undefined;
  /** Seconds past the expected rotation with none seen (with the jitter allowed for); 0 when on time. */
  lagSeconds: number;
  agents: Array<{ agent: string; lastDelivery: string | undefined }>;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** A token found by a tree search, to pick one and see its lineage. */
export interface TokenRow {
  jti: string;
  child: string;
  env: string;
  scopes: string[];
  time: Date | undefined;
  /** The agent a grant's token went to; empty for a delegation. */
  agent: string;
}

/**
 * The tokens of `delegation.issued` events, and of `grant.minted` events (one per agent delivery),
 * newest first.
 */
export function tokenRows(audit: events.AuditEvent[]): TokenRow[] {
  const rows: TokenRow[] = [];
  for (const event of audit) {
    const d = event.data ?? {};
    const base = { child: text(d.child), env: text(d.env), time: event.time };
    if (event.type === 'delegation.issued') {
      rows.push({ ...base, jti: event.subject, scopes: strings(d.scopes_granted), agent: '' });
    } else if (event.type === 'grant.minted' && Array.isArray(d.deliveries)) {
      for (const delivery of d.deliveries as Array<Record<string, unknown>>) {
        if (text(delivery?.jti)) {
          rows.push({
            ...base,
            jti: text(delivery.jti),
            scopes: strings(d.scopes),
            agent: text(delivery.agent),
          });
        }
      }
    }
  }
  return rows.reverse();
}

/**
 * Joins the rotator's grants with the audit: each grant's latest `grant.minted` and each agent's latest
 * `credential.delivered` (events in stream order, so the last seen is the latest).
 */
export function grantRows(grants: rotator.Grant[], audit: events.AuditEvent[], nowMs: number): GrantRow[] {
  const minted = new Map<string, Date>();
  const delivered = new Map<string, Date>();
  for (const event of audit) {
    const grantId = text(event.data?.grant_id);
    if (!event.time || !grantId) continue;
    if (event.type === 'grant.minted') minted.set(grantId, event.time);
    if (event.type === 'credential.delivered')
      delivered.set(`${grantId}/${text(event.data?.agent)}`, event.time);
  }
  return grants.map((grant) => {
    const last = minted.get(grant.id);
    const halfTtlMs = (Number(grant.tokenTtlSeconds) * 1000) / 2;
    const dueMs = last ? last.getTime() + halfTtlMs : undefined;
    const lateMs = dueMs !== undefined && grant.state === 'active' ? nowMs - (dueMs + halfTtlMs * 0.1) : 0;
    return {
      grant,
      lastRotation: last?.toISOString(),
      nextRotation: dueMs !== undefined ? new Date(dueMs).toISOString() : undefined,
      lagSeconds: lateMs > 0 ? Math.round(lateMs / 1000) : 0,
      agents: grant.agents.map((agent) => ({
        agent,
        lastDelivery: delivered.get(`${grant.id}/${agent}`)?.toISOString(),
      })),
    };
  });
}

export interface CreepDay {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  alerts: number;
}

/** Creep alerts counted per UTC day over the last `days` days, oldest first, empty days included. */
export function creepDays(alerts: events.AuditEvent[], nowMs: number, days = 14): CreepDay[] {
  const counts = new Map<string, number>();
  for (const alert of alerts) {
    if (!alert.time) continue;
    const day = alert.time.toISOString().slice(0, 10);
    counts.set(day, (counts.get(day) ?? 0) + 1);
  }
  const out: CreepDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(nowMs - i * 86_400_000).toISOString().slice(0, 10);
    out.push({ day, alerts: counts.get(day) ?? 0 });
  }
  return out;
}
