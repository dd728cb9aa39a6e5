import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, isName, type Logger } from '@aoa/core';
import type { events } from '@aoa/proto';
import { type AoaServices, type OperatorCredential, ServiceRefusal } from '../domain/services.js';
import { SECURITY_HEADERS } from './web.js';

/** How often the feed asks the auditor for what is new, and how far back it starts. */
const POLL_MS = 250;
/** After the auditor is unavailable, the wait before asking again (doubling, capped). */
const MAX_BACKOFF_MS = 8000;
const BACKLOG_MS = 15 * 60_000;
const HEARTBEAT_MS = 15_000;
/** A browser that stops reading loses its feed once this much is waiting to be sent. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;
/** Refusals no later poll would change: the feed ends. */
const FINAL = new Set(['INVALID_ARGUMENT', 'PERMISSION_DENIED', 'UNAUTHENTICATED']);

/** The feed's filters, checked at the edge. */
export interface FeedFilters {
  types: string[];
  app: string;
  env: string;
  subject: string;
}

/** The filters of a feed request, or what is wrong with them. */
export function feedFilters(query: URLSearchParams): FeedFilters | string {
  const type = query.get('type') ?? '';
  const app = query.get('app') ?? '';
  const env = query.get('env') ?? '';
  const subject = query.get('subject') ?? '';
  if (type && !TYPE.test(type)) return 'type: an event type, e.g. delegation.issued';
  if (app && !isName(app)) return 'app: a lowercase name';
  if (env && !isName(env)) return 'env: a lowercase name';
  if (subject.length > 1024) return 'subject: at most 1024 characters';
  return { types: type ? [type] : [], app, env, subject };
}

/** How many feeds are open, per session and in all; `open` refuses past either limit. */
export class FeedLimits {
  private readonly bySession = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perSession: number,
    private readonly overall: number,
  ) {}

  open(sessionId: string): boolean {
    const held = this.bySession.get(sessionId) ?? 0;
    if (held >= this.perSession || this.total >= this.overall) return false;
    this.bySession.set(sessionId, held + 1);
    this.total += 1;
    return true;
  }

  close(sessionId: string): void {
    const held = (this.bySession.get(sessionId) ?? 1) - 1;
    if (held > 0) this.bySession.set(sessionId, held);
    else this.bySession.delete(sessionId);
    this.total -= 1;
  }
}

export interface FeedOptions {
  services: AoaServices;
  clock: Clock;
  log: Logger;
  filters: FeedFilters;
  /** The session's operator token, renewed as it runs out; undefined once the session has none. */
  operator(): Promise<OperatorCredential | undefined>;
}

/** The fields a feed row shows: no event data beyond the app and environment it is about. */
function row(event: events.AuditEvent): Record<string, string> {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    id: event.id,
    type: event.type,
    time: event.time?.toISOString() ?? '',
    subject: event.subject,
    app: text(event.data?.child ?? event.data?.app),
    env: text(event.data?.env ?? event.data?.environment),
  };
}

/**
 * Server-Sent Events of the audit as the auditor stores it: the last 15 minutes, then every new event
 * matching the filters, asked of `Auditor.Query` (as the signed-in person) every 250 ms after the last
 * event seen. Ends when the browser goes or stops reading, on a refusal no retry would change, or with
 * an `expired` event once the session can no longer hold an operator token. An unavailable auditor is
 * asked again after a growing pause.
 */
export async function feedStream(
  req: IncomingMessage,
  res: ServerResponse,
  options: FeedOptions,
): Promise<void> {
  const { services, clock, log, filters } = options;
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    connection: 'keep-alive',
  });
  let open = true;
  req.on('close', () => {
    open = false;
  });
  const send = (event: string, data: unknown) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > MAX_BUFFERED_BYTES) open = false;
  };
  let after = '';
  let since: Date | undefined = new Date(clock.nowMs() - BACKLOG_MS);
  let lastWrite = clock.nowMs();
  let waitMs = POLL_MS;
  send('ready', { polling_ms: POLL_MS });
  while (open) {
    const operator = await options.operator().catch(() => undefined);
    if (!operator) {
      send('expired', { reason: 'sign in again' });
      break;
    }
    try {
      const rows = await services.query(operator, { ...filters, limit: 500, since, pageToken: after });
      waitMs = POLL_MS;
      for (const event of rows) send('audit', row(event));
      const last = rows.at(-1);
      if (last) {
        after = last.id;
        since = undefined;
        lastWrite = clock.nowMs();
      }
    } catch (error) {
      if (!(error instanceof ServiceRefusal)) throw error;
      if (FINAL.has(error.code)) {
        send('expired', { reason: error.code === 'INVALID_ARGUMENT' ? 'bad filter' : 'sign in again' });
        break;
      }
      send('problem', { message: 'the audit is unavailable; retrying' });
      log.warn({ code: error.code, details: error.details }, 'audit feed query failed');
      waitMs = Math.min(MAX_BACKOFF_MS, waitMs * 2);
    }
    if (clock.nowMs() - lastWrite > HEARTBEAT_MS) {
      res.write(': heartbeat\n\n');
      lastWrite = clock.nowMs();
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  res.end();
}
