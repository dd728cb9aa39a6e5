import { AppError } from '@aoa/core';
import type { RowPosition } from './chain.js';

/** The filters of `Auditor.Query` (the proto request, decoded). */
export interface QueryFilter {
  since: Date | undefined;
  until: Date | undefined;
  types: string[];
  app: string;
  env: string;
  subject: string;
  jti: string;
  outcome: string;
  limit: number;
  pageToken: string;
  /**
   * Only the events of these parent clients (an owner's view): their root tokens (`client_id`), every
   * token below one of their root or grant tokens (`lineage`), and their grants' events (by each
   * grant's latest `parent_client`); undefined: all.
   */
  clients?: string[] | undefined;
}

export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 10_000;
const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;
const NAME = /^[A-Za-z0-9_.:-]{1,256}$/;

export interface CompiledQuery {
  where: string;
  params: unknown[];
  limit: number;
  /** The page token (an event id) to resolve to a row position; resolved by the caller. */
  afterId: string | undefined;
}

/** The events of tokens and grants whose parent client is one of `clients` (none: no event). */
function ownedBy(clients: string[], p: (value: unknown) => string): string {
  if (clients.length === 0) return 'FALSE';
  const ids = clients.map((c) => p(c)).join(',');
  const requesters = clients.map((c) => p(`client:${c}`)).join(',');
  const issued = `SELECT data->>'jti' FROM audit_events WHERE type = 'delegation.issued' AND marker IS NULL AND data->>'client_id' IN (${requesters})`;
  // A grant's parent client is its latest grant.created or grant.updated (a policy grant may move).
  const latest = `SELECT DISTINCT ON (data->>'id') data->>'id' AS id, data->>'parent_client' AS parent FROM audit_events WHERE type IN ('grant.created', 'grant.updated') AND marker IS NULL ORDER BY data->>'id', seq DESC`;
  const grants = `SELECT id FROM (${latest}) AS g WHERE g.parent IN (${ids})`;
  // A mint names the parent client it minted for, so a grant that moved keeps its earlier tokens' owner.
  const minted = `SELECT d.value->>'jti' FROM audit_events, jsonb_array_elements(data->'deliveries') AS d(value) WHERE type = 'grant.minted' AND marker IS NULL AND data->>'parent_client' IN (${ids})`;
  return `(data->>'client_id' IN (${requesters}) OR data->'lineage'->>0 IN (${issued}) OR data->'lineage'->>0 IN (${minted}) OR (type IN ('grant.created', 'grant.updated', 'grant.minted') AND data->>'parent_client' IN (${ids})) OR (type NOT IN ('grant.created', 'grant.updated', 'grant.minted') AND data->>'grant_id' IN (${grants})))`;
}

/**
 * Validates the filters and compiles them to one parameterised WHERE clause (fixed fragments only).
 * A malformed filter is the caller's mistake: `invalid_argument` naming the field.
 *
 * @example
 * compileQuery({ ...empty, types: ['delegation.issued'], env: 'prod' }, { seq: 0, part: 0 });
 */
export function compileQuery(filter: QueryFilter, after: RowPosition): CompiledQuery {
  const bad = (field: string, why: string) => new AppError('invalid_argument', `${field}: ${why}`);
  if (filter.limit < 0 || filter.limit > MAX_QUERY_LIMIT) throw bad('limit', `must be 0..${MAX_QUERY_LIMIT}`);
  if (filter.since && Number.isNaN(filter.since.getTime())) throw bad('since', 'not a timestamp');
  if (filter.until && Number.isNaN(filter.until.getTime())) throw bad('until', 'not a timestamp');
  if (filter.since && filter.until && filter.since >= filter.until)
    throw bad('since', 'must be before until');
  if (filter.types.length > 32) throw bad('types', 'at most 32');
  for (const t of filter.types)
    if (!TYPE.test(t)) throw bad('types', `${JSON.stringify(t.slice(0, 64))} is not an event type`);
  for (const [field, value] of [
    ['app', filter.app],
    ['env', filter.env],
    ['jti', filter.jti],
  ] as const) {
    if (value && !NAME.test(value)) throw bad(field, 'must be 1-256 characters of A-Z a-z 0-9 _ . : -');
  }
  if (filter.subject.length > 1024) throw bad('subject', 'at most 1024 characters');
  if (filter.outcome && !/^[a-z_]{1,64}$/.test(filter.outcome))
    throw bad('outcome', 'must be a lowercase word');
  if (filter.pageToken && !/^[A-Za-z0-9_-]{1,128}$/.test(filter.pageToken))
    throw bad('page_token', 'malformed');

  const params: unknown[] = [];
  const p = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const clauses = ['marker IS NULL', `(seq, part) > (${p(after.seq)}, ${p(after.part)})`];
  if (filter.since) clauses.push(`time >= ${p(filter.since.toISOString())}`);
  if (filter.until) clauses.push(`time < ${p(filter.until.toISOString())}`);
  if (filter.types.length > 0) clauses.push(`type IN (${filter.types.map((t) => p(t)).join(',')})`);
  if (filter.app) clauses.push(`data->>'child' = ${p(filter.app)}`);
  if (filter.env) clauses.push(`data->>'env' = ${p(filter.env)}`);
  if (filter.subject) clauses.push(`subject = ${p(filter.subject)}`);
  if (filter.jti) {
    const jti = p(filter.jti);
    clauses.push(`(data->>'jti' = ${jti} OR subject = ${jti})`);
  }
  if (filter.outcome) clauses.push(`type LIKE ${p(`%.${filter.outcome}`)}`);
  if (filter.clients) clauses.push(ownedBy(filter.clients, p));
  return {
    where: clauses.join(' AND '),
    params,
    limit: filter.limit === 0 ? DEFAULT_QUERY_LIMIT : filter.limit,
    afterId: filter.pageToken || undefined,
  };
}
