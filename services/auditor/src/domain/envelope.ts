import {
  AUDIT_BATCH_MAX_BYTES,
  AUDIT_BATCH_MAX_EVENTS,
  type AuditEnvelope,
  isAuditEventType,
} from '@aoa/core';

const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/;

const ID = /^[A-Za-z0-9_-]{8,128}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const FIELDS = new Set(['id', 'type', 'time', 'source', 'subject', 'data']);

/** The envelope schema of `events.proto`, by hand: it runs for every event on the ingest path. */
function envelopeProblem(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return '(root): must be an object';
  const e = json as Record<string, unknown>;
  for (const key of Object.keys(e)) if (!FIELDS.has(key)) return `(root): unknown field ${key.slice(0, 64)}`;
  if (typeof e.id !== 'string' || !ID.test(e.id)) return 'id: must be 8-128 base64url characters';
  if (typeof e.type !== 'string' || !TYPE.test(e.type)) return 'type: must be dotted lowercase words';
  if (typeof e.time !== 'string' || !RFC3339.test(e.time) || Number.isNaN(Date.parse(e.time))) {
    return 'time: must be an RFC 3339 timestamp';
  }
  if (typeof e.source !== 'string' || e.source.length < 1 || e.source.length > 256)
    return 'source: must be 1-256 characters';
  if (typeof e.subject !== 'string' || e.subject.length > 1024)
    return 'subject: must be at most 1024 characters';
  if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data))
    return 'data: must be an object';
  if (deeperThan(e.data, MAX_DATA_DEPTH)) return `data: nested deeper than ${MAX_DATA_DEPTH} levels`;
  return undefined;
}

/** A valid event (the envelope of `events.proto`), normalised for storage (time in ms precision, UTC). */
export type ValidEvent = AuditEnvelope;

/** One event of a batch message: valid, or why not, with its own JSON for the dead-letter table. */
export type ParsedEvent = { ok: true; event: ValidEvent } | { ok: false; reason: string; raw: Uint8Array };

/** A message's events, in order (one, or those of an `aoa.audit.batch` message), or why it has none. */
export type ParsedMessage = { ok: true; events: ParsedEvent[] } | { ok: false; reason: string };

/**
 * Checks one raw message of `AOA_AUDIT`: size, JSON, envelope schema, known type, and that it travelled
 * on its own type's subject. On `aoa.audit.batch`, the message must be `{"events":[...]}`; then each
 * event is checked as a single one would be (size against the same limit; any subject), and one bad
 * event is its own dead letter, not its siblings'. Never throws: anything wrong is a reason for the
 * dead-letter table.
 */
export function parseAuditMessage(
  raw: Uint8Array,
  natsSubject: string,
  options: { prefix: string; maxBytes: number },
): ParsedMessage {
  const batch = natsSubject === `${options.prefix}.audit.batch`;
  const maxBytes = batch ? Math.max(options.maxBytes, AUDIT_BATCH_MAX_BYTES) : options.maxBytes;
  if (raw.byteLength > maxBytes) {
    return { ok: false, reason: `oversized: ${raw.byteLength} bytes, limit ${maxBytes}` };
  }
  let text: string;
  let json: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid JSON' };
  }
  if (!batch) {
    // PostgreSQL text and jsonb cannot hold NUL characters.
    if (text.includes('\\u0000')) return { ok: false, reason: 'schema: NUL character in event' };
    const checked = checkEvent(json, natsSubject, options.prefix);
    return typeof checked === 'string'
      ? { ok: false, reason: checked }
      : { ok: true, events: [{ ok: true, event: checked }] };
  }
  const problem = batchProblem(json);
  if (problem) return { ok: false, reason: `schema: ${problem}` };
  // An event can break a single event's size limit or hold a NUL only if the whole message does:
  // most batch messages need no event serialised again.
  const suspect = raw.byteLength > options.maxBytes || text.includes('\\u0000');
  return {
    ok: true,
    events: (json as { events: unknown[] }).events.map((member, i): ParsedEvent => {
      const checked =
        (suspect && ownProblem(member, options.maxBytes)) || checkEvent(member, undefined, options.prefix);
      return typeof checked === 'string'
        ? { ok: false, reason: `events[${i}]: ${checked}`, raw: Buffer.from(JSON.stringify(member)) }
        : { ok: true, event: checked };
    }),
  };
}

/** What only an event's own JSON shows: its size against a single event's limit, a NUL character. */
function ownProblem(member: unknown, maxBytes: number): string | undefined {
  const own = JSON.stringify(member);
  const bytes = Buffer.byteLength(own);
  if (bytes > maxBytes) return `oversized: ${bytes} bytes, limit ${maxBytes}`;
  return own.includes('\\u0000') ? 'schema: NUL character in event' : undefined;
}

function batchProblem(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return '(root): must be an object';
  const keys = Object.keys(json);
  const extra = keys.find((k) => k !== 'events');
  if (extra !== undefined) return `(root): unknown field ${extra.slice(0, 64)}`;
  const { events } = json as { events?: unknown };
  if (!Array.isArray(events) || events.length === 0 || events.length > AUDIT_BATCH_MAX_EVENTS) {
    return `events: must be an array of 1-${AUDIT_BATCH_MAX_EVENTS} events`;
  }
  return undefined;
}

/**
 * One event's schema, type, and subject (`natsSubject`: the message's, for a single event; a batch's
 * events travel on the batch subject); the event normalised, or the reason it is not one.
 */
function checkEvent(json: unknown, natsSubject: string | undefined, prefix: string): ValidEvent | string {
  const problem = envelopeProblem(json);
  if (problem) return `schema: ${problem}`;
  const event = json as ValidEvent;
  // Exactly the types defined once in @aoa/core (AUDIT_EVENT_TYPES, events.proto); anything else is a
  // dead letter, never a silent drop.
  if (!isAuditEventType(event.type)) return `unknown type ${event.type}`;
  if (natsSubject !== undefined && natsSubject !== `${prefix}.audit.${event.type}`) {
    return `schema: type ${event.type} published on subject ${natsSubject}`;
  }
  return {
    id: event.id,
    type: event.type,
    time: new Date(event.time).toISOString(),
    source: event.source,
    subject: event.subject,
    data: event.data,
  };
}

/** How deep `data` may nest: hashing walks it recursively, and no event type needs more than a few. */
export const MAX_DATA_DEPTH = 32;

/** Whether a JSON value nests deeper than `limit` levels (objects and arrays), never recursing past it. */
function deeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  const children = Array.isArray(value) ? value : Object.values(value);
  return children.some((child) => deeperThan(child, limit - 1));
}
