import type { JsMsg } from '@nats-io/jetstream';
import type { RowContent } from '../domain/chain.js';
import { type ParsedMessage, parseAuditMessage } from '../domain/envelope.js';
import type { DeadLetter } from '../store/audit-store.js';

/** What to do with one pulled batch, decided against the chain's next expected stream sequence. */
export interface BatchPlan {
  /** Rows to link and store, in stream order. */
  rows: RowContent[];
  deadLetters: DeadLetter[];
  /** Messages whose row is in `rows`: acknowledged once the batch is committed. */
  toStore: JsMsg[];
  /** Redeliveries of sequences already stored: acknowledged at once. */
  alreadyStored: JsMsg[];
  /** Messages past a gap (an earlier sequence is still being redelivered): nak'd with a delay. */
  deferred: JsMsg[];
  /** The next expected sequence after this batch. */
  nextSeq: number;
}

export interface PlanOptions {
  prefix: string;
  nowIso: string;
  /** Event ids of this batch already in the store. */
  storedIds: ReadonlySet<string>;
  /**
   * The stream's first sequence, when the batch skipped past the expected one: sequences below it
   * were discarded by JetStream (age or size limits) and get one `lost` marker row.
   */
  streamFirstSeq?: number;
  /** The stream name, the subject of a `lost` marker row. */
  stream?: string;
}

/**
 * Splits a batch into rows (events, duplicate markers, dead-letter markers) chained strictly by stream
 * sequence: nothing is skipped, so every sequence gets its rows (one, or one per event of a batch
 * message, numbered by `part`), except a range JetStream no longer holds, which gets one `lost` marker
 * row at its last sequence.
 */
export function planBatch(batch: ParsedBatch, expectedSeq: number, options: PlanOptions): BatchPlan {
  const plan: BatchPlan = {
    rows: [],
    deadLetters: [],
    toStore: [],
    alreadyStored: [],
    deferred: [],
    nextSeq: expectedSeq,
  };
  const firstSeq = options.streamFirstSeq;
  if (firstSeq !== undefined && firstSeq > expectedSeq) {
    plan.rows.push(lostRange(expectedSeq, firstSeq - 1, options));
    plan.nextSeq = firstSeq;
  }
  const seenIds = new Set<string>();
  for (const { m, parsed } of batch) {
    if (m.seq < plan.nextSeq) {
      plan.alreadyStored.push(m);
      continue;
    }
    if (m.seq > plan.nextSeq || plan.deferred.length > 0) {
      plan.deferred.push(m);
      continue;
    }
    plan.rows.push(...rowsFor(m, parsed, options, seenIds, plan.deadLetters));
    plan.toStore.push(m);
    plan.nextSeq += 1;
  }
  return plan;
}

/** A message's rows: one per event, in the message's order (a bad event a dead-letter marker), or one. */
function rowsFor(
  m: JsMsg,
  parsed: ParsedMessage,
  options: PlanOptions,
  seenIds: Set<string>,
  deadLetters: DeadLetter[],
): RowContent[] {
  const marker = { seq: m.seq, id: null, time: options.nowIso, source: 'auditor', subject: m.subject };
  const deadLetter = (part: number, parts: number, reason: string, raw: Uint8Array): RowContent => {
    deadLetters.push({ seq: m.seq, part, natsSubject: m.subject, reason, raw });
    return { ...marker, part, parts, type: 'marker.dead_letter', data: { reason }, marker: 'dead_letter' };
  };
  if (!parsed.ok) return [deadLetter(0, 1, parsed.reason, m.data)];
  const parts = parsed.events.length;
  return parsed.events.map((member, part) => {
    if (!member.ok) return deadLetter(part, parts, member.reason, member.raw);
    const { event } = member;
    if (seenIds.has(event.id) || options.storedIds.has(event.id)) {
      return {
        ...marker,
        part,
        parts,
        type: event.type,
        data: { duplicate_of: event.id },
        marker: 'duplicate',
      };
    }
    seenIds.add(event.id);
    return { seq: m.seq, part, parts, ...event, marker: null };
  });
}

/** The marker row of sequences `from..to` that JetStream discarded before they were stored. */
export function lostRange(from: number, to: number, options: PlanOptions): RowContent {
  return {
    seq: to,
    part: 0,
    parts: 1,
    id: null,
    type: 'marker.lost',
    time: options.nowIso,
    source: 'auditor',
    subject: options.stream ?? 'AOA_AUDIT',
    data: {
      from_seq: from,
      to_seq: to,
      count: to - from + 1,
      reason: 'discarded by the stream before it was stored',
    },
    marker: 'lost',
  };
}

/** A batch's messages in stream order, each parsed once. */
export type ParsedBatch = Array<{ m: JsMsg; parsed: ParsedMessage }>;

/** Parses every message of a batch (never throws) and sorts them by stream sequence. */
export function parseBatch(batch: JsMsg[], options: { prefix: string; maxEventBytes: number }): ParsedBatch {
  return batch
    .map((m) => ({
      m,
      parsed: parseAuditMessage(m.data, m.subject, {
        prefix: options.prefix,
        maxBytes: options.maxEventBytes,
      }),
    }))
    .sort((a, b) => a.m.seq - b.m.seq);
}

/** The ids of the valid events of a parsed batch. */
export function eventIds(batch: ParsedBatch): string[] {
  return batch.flatMap(({ parsed }) =>
    parsed.ok ? parsed.events.flatMap((e) => (e.ok ? [e.event.id] : [])) : [],
  );
}
