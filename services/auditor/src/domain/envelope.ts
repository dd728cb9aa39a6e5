import { type AuditEnvelope, isAuditEventType } from '@aoa/core';

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
  return undefined;
}

/** A valid event (the envelope of `events.proto`), normalised for storage (time in ms precision, UTC). */
export type ValidEvent = AuditEnvelope;

export type ParsedMessage = { ok: true; event: ValidEvent } | { ok: false; reason: string };

/**
 * Checks one raw message of `AOA_AUDIT`: size, JSON, envelope schema, known type, and that it travelled
 * on its own type's subject. Never throws: anything wrong is a reason for the dead-letter table.
 */
export function parseAuditMessage(
  raw: Uint8Array,
  natsSubject: string,
  options: { prefix: string; maxBytes: number },
): ParsedMessage {
  if (raw.byteLength > options.maxBytes) {
    return { ok: false, reason: `oversized: ${raw.byteLength} bytes, limit ${options.maxBytes}` };
  }
  let text: string;
  let json: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid JSON' };
  }
  // PostgreSQL text and jsonb cannot hold NUL characters.
  if (text.includes('\\u0000')) return { ok: false, reason: 'schema: NUL character in event' };
  const problem = envelopeProblem(json);
  if (problem) return { ok: false, reason: `schema: ${problem}` };
  const event = json as ValidEvent;
  // Exactly the types defined once in @aoa/core (AUDIT_EVENT_TYPES, events.proto); anything else is a
  // dead letter, never a silent drop.
  if (!isAuditEventType(event.type)) return { ok: false, reason: `unknown type ${event.type}` };
  if (natsSubject !== `${options.prefix}.audit.${event.type}`) {
    return { ok: false, reason: `schema: type ${event.type} published on subject ${natsSubject}` };
  }
  return {
    ok: true,
    event: {
      id: event.id,
      type: event.type,
      time: new Date(event.time).toISOString(),
      source: event.source,
      subject: event.subject,
      data: event.data,
    },
  };
}
