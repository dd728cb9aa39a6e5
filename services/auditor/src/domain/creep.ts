import { createHash } from 'node:crypto';
import { type AuditEventType, isAuditEventType } from '@aoa/core';
import type { RowContent } from './chain.js';

/** Everything an app ever held in one environment: the baseline a new grant is compared with. */
export interface PrivilegeBaseline {
  app: string;
  env: string;
  scopes: string[];
  audiences: string[];
  maxTtlSeconds: number;
  maxDepth: number;
}

/** One issuance read from a stored event: a delegation, or a rotator mint for a standing grant. */
export interface Issuance {
  eventId: string;
  eventType: string;
  app: string;
  env: string;
  scopes: string[];
  audiences: string[];
  ttlSeconds: number;
  depth: number;
  /** The policy rule that allowed it; empty when the event does not say. */
  rule: string;
  sub: string;
  /** The token (delegations) or the grant (mints) the event is about. */
  jti: string;
  grantId: string;
}

/** What grew past the baseline; only the dimensions that grew are present. */
export interface CreepGrowth {
  scopes?: { before: string[]; added: string[] };
  audiences?: { before: string[]; added: string[] };
  ttl?: { before: number; after: number };
  depth?: { before: number; after: number };
}

/** The event types the auditor reads issuances from: the types the issuer publishes. */
const ISSUANCE_TYPES: ReadonlySet<AuditEventType> = new Set(['delegation.issued', 'grant.minted']);

/** The type of the alert event the auditor publishes onto `AOA_AUDIT`. */
export const CREEP_ALERT_TYPE: AuditEventType = 'alert.privilege_creep';

/**
 * Events carry the token's `exp` in seconds and their own time, not the token's `iat`: the TTL read
 * back may be a second short, so a TTL grows only when it passes the baseline by more than this.
 */
const TTL_SLACK_SECONDS = 1;

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/**
 * The issuance an event records, or undefined for any other event (markers included). TTL is the
 * token's `exp` less the event time, rounded up to whole seconds: the event is written just after the
 * token is signed, so this never overstates the TTL.
 */
export function issuanceOf(row: RowContent): Issuance | undefined {
  if (row.marker !== null || row.id === null) return undefined;
  if (!isAuditEventType(row.type) || !ISSUANCE_TYPES.has(row.type)) return undefined;
  const d = row.data;
  const app = text(d.child);
  const env = text(d.env);
  if (!app || !env) return undefined;
  const issuedAt = Date.parse(row.time) / 1000;
  const minted = row.type === 'grant.minted';
  const exps = minted
    ? (Array.isArray(d.deliveries) ? d.deliveries : []).map((x) => Number((x as { exp?: unknown }).exp))
    : [Number(d.exp)];
  const exp = Math.max(0, ...exps.filter(Number.isFinite));
  return {
    eventId: row.id,
    eventType: row.type,
    app,
    env,
    scopes: strings(minted ? d.scopes : d.scopes_granted),
    audiences: strings(d.audience),
    ttlSeconds: Math.max(0, Math.ceil(exp - issuedAt)),
    depth: Number.isInteger(d.depth) ? Number(d.depth) : 0,
    rule: text(d.rule),
    sub: text(d.sub),
    jti: minted ? '' : text(d.jti),
    grantId: text(d.grant_id),
  };
}

/** An issuance and the stream sequence of the event that records it. */
export interface SequencedIssuance {
  issuance: Issuance;
  seq: number;
}

/** The issuances `rows` record, in stream order. */
export function issuancesOf(rows: readonly RowContent[]): SequencedIssuance[] {
  return rows.flatMap((row) => {
    const issuance = issuanceOf(row);
    return issuance ? [{ issuance, seq: row.seq }] : [];
  });
}

/**
 * Compares one issuance with its app's baseline in its environment. The first issuance only sets the
 * baseline; later ones widen it, and report what grew (a new scope or audience, a longer TTL, a
 * deeper chain), so the same growth is reported once.
 */
export function assessIssuance(
  baseline: PrivilegeBaseline | undefined,
  issuance: Issuance,
): { baseline: PrivilegeBaseline; growth: CreepGrowth | undefined } {
  const { app, env } = issuance;
  if (!baseline) {
    return {
      baseline: {
        app,
        env,
        scopes: [...new Set(issuance.scopes)].sort(),
        audiences: [...new Set(issuance.audiences)].sort(),
        maxTtlSeconds: issuance.ttlSeconds,
        maxDepth: issuance.depth,
      },
      growth: undefined,
    };
  }
  const newScopes = [...new Set(issuance.scopes.filter((s) => !baseline.scopes.includes(s)))].sort();
  const newAudiences = [...new Set(issuance.audiences.filter((a) => !baseline.audiences.includes(a)))].sort();
  const growth: CreepGrowth = {
    ...(newScopes.length > 0 ? { scopes: { before: baseline.scopes, added: newScopes } } : {}),
    ...(newAudiences.length > 0 ? { audiences: { before: baseline.audiences, added: newAudiences } } : {}),
    ...(issuance.ttlSeconds > baseline.maxTtlSeconds + TTL_SLACK_SECONDS
      ? { ttl: { before: baseline.maxTtlSeconds, after: issuance.ttlSeconds } }
      : {}),
    ...(issuance.depth > baseline.maxDepth
      ? { depth: { before: baseline.maxDepth, after: issuance.depth } }
      : {}),
  };
  const widened: PrivilegeBaseline = {
    app,
    env,
    scopes: [...baseline.scopes, ...newScopes].sort(),
    audiences: [...baseline.audiences, ...newAudiences].sort(),
    maxTtlSeconds: Math.max(baseline.maxTtlSeconds, issuance.ttlSeconds),
    maxDepth: Math.max(baseline.maxDepth, issuance.depth),
  };
  return { baseline: widened, growth: Object.keys(growth).length > 0 ? growth : undefined };
}

/** A creep alert, ready to publish: its id derives from the issuance's event, so a retry is deduplicated. */
export interface CreepAlert {
  id: string;
  /** The stream sequence of the issuance event. */
  sourceSeq: number;
  /** The envelope subject: `<app>.<env>`. */
  subject: string;
  data: Record<string, unknown>;
}

/**
 * Runs a batch of issuances (in stream order) against the baselines, widening them as it goes.
 * Returns the baselines that changed and one alert per issuance that grew past its baseline.
 *
 * @example
 * const { changed, alerts } = assessBatch(await loadBaselines(pairs), issuancesOf(rows));
 */
export function assessBatch(
  baselines: ReadonlyMap<string, PrivilegeBaseline>,
  issuances: readonly SequencedIssuance[],
): { changed: PrivilegeBaseline[]; alerts: CreepAlert[] } {
  const current = new Map(baselines);
  const changed = new Map<string, PrivilegeBaseline>();
  const alerts: CreepAlert[] = [];
  for (const { issuance, seq } of issuances) {
    const key = baselineKey(issuance.app, issuance.env);
    const { baseline, growth } = assessIssuance(current.get(key), issuance);
    current.set(key, baseline);
    changed.set(key, baseline);
    if (growth) alerts.push(creepAlert(issuance, growth, seq));
  }
  return { changed: [...changed.values()], alerts };
}

export const baselineKey = (app: string, env: string): string => `${app}\n${env}`;

function creepAlert(issuance: Issuance, growth: CreepGrowth, sourceSeq: number): CreepAlert {
  const digest = createHash('sha256').update(issuance.eventId).digest('base64url').slice(0, 32);
  return {
    id: `creep_${digest}`,
    sourceSeq,
    subject: `${issuance.app}.${issuance.env}`,
    data: {
      child: issuance.app,
      env: issuance.env,
      grew: Object.keys(growth),
      growth,
      rule: issuance.rule || '(not recorded by the event)',
      source_event: issuance.eventId,
      source_type: issuance.eventType,
      sub: issuance.sub,
      ...(issuance.jti ? { jti: issuance.jti } : {}),
      ...(issuance.grantId ? { grant_id: issuance.grantId } : {}),
    },
  };
}
