import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';

/** The `prev_hash` of the first row of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Why a row is a marker instead of an event: every stream sequence keeps its link in the chain. A
 * `lost` row stands for a range of sequences JetStream discarded (limits) before they were stored.
 */
export type MarkerKind = 'duplicate' | 'dead_letter' | 'lost';

/** One row of `audit_events`, as the chain sees it. */
export interface ChainRow {
  /** The JetStream stream sequence of the message. */
  seq: number;
  /** The event's place in its message: 0, or 0 to `parts`-1 for the events of an `aoa.audit.batch` message. */
  part: number;
  /** How many events the message carried: 1, or the length of an `aoa.audit.batch` message. */
  parts: number;
  /** The event id; null on marker rows (the unique id belongs to the stored event). */
  id: string | null;
  type: string;
  /** ISO 8601 with milliseconds, UTC (`Date.prototype.toISOString`). */
  time: string;
  source: string;
  subject: string;
  data: Record<string, unknown>;
  marker: MarkerKind | null;
  prevHash: string;
  hash: string;
}

export type RowContent = Omit<ChainRow, 'prevHash' | 'hash'>;

/** Where a row sits in the chain: its message's stream sequence, then its part of that message. */
export type RowPosition = Pick<ChainRow, 'seq' | 'part'>;

/** A row's place and its message's length. */
export type RowPlace = Pick<ChainRow, 'seq' | 'part' | 'parts'>;

/**
 * What a row's hash covers: the event envelope for events; for marker rows also the sequence and the
 * marker kind, since they carry no unique id of their own. A row of a batch message (`parts` > 1) also
 * covers its sequence, part and parts, so its message's bounds cannot be moved or cut unseen. A row of
 * a one-event message hashes exactly as every row did before batch messages.
 */
export function hashedContent(row: RowContent): Record<string, unknown> {
  const envelope = {
    id: row.id,
    type: row.type,
    time: row.time,
    source: row.source,
    subject: row.subject,
    data: row.data,
  };
  const place = row.parts === 1 ? { seq: row.seq } : { seq: row.seq, part: row.part, parts: row.parts };
  if (row.marker === null) return row.parts === 1 ? envelope : { ...envelope, ...place };
  return { ...envelope, ...place, marker: row.marker };
}

/** `hash = SHA-256(prev_hash || canonical JSON of the event)`, hex. */
export function linkHash(prevHash: string, row: RowContent): string {
  return createHash('sha256')
    .update(prevHash)
    .update(canonicalJson(hashedContent(row)))
    .digest('hex');
}

/** Links rows (in stream order) onto a chain head. */
export function chainRows(head: string, rows: RowContent[]): ChainRow[] {
  let prevHash = head;
  return rows.map((row) => {
    const hash = linkHash(prevHash, row);
    const linked = { ...row, prevHash, hash };
    prevHash = hash;
    return linked;
  });
}
