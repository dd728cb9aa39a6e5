import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Logger } from '@aoa/core';
import type { events } from '@aoa/proto';
import type { AoaServices, OperatorCredential } from '../domain/services.js';
import { SECURITY_HEADERS } from './web.js';

/** How often the feed asks the auditor for what is new, and how far back it starts. */
const POLL_MS = 250;
const BACKLOG_MS = 15 * 60_000;
const HEARTBEAT_MS = 15_000;
const TYPE = /^[a-z_]+(\.[a-z_]+)*$/;

export interface FeedOptions {
  services: AoaServices;
  clock: Clock;
  log: Logger;
  filters: URLSearchParams;
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
 * event seen. Ends when the browser goes, or with an `expired` event when the session can no longer
 * hold an operator token.
 */
export async function feedStream(
  req: IncomingMessage,
  res: ServerResponse,
  options: FeedOptions,
): Promise<void> {
  const { services, clock, log, filters } = options;
  const type = filters.get('type') ?? '';
  const query = {
    types: type && TYPE.test(type) ? [type] : [],
    app: filters.get('app') ?? '',
    env: filters.get('env') ?? '',
    subject: filters.get('subject') ?? '',
    limit: 500,
  };
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    connection: 'keep-alive',
  });
  let open = true;
  req.on('close', () => {
    open = false;
  });
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  let after = '';
  let since: Date | undefined = new Date(clock.nowMs() - BACKLOG_MS);
  let lastWrite = clock.nowMs();
  send('ready', { polling_ms: POLL_MS });
  while (open) {
    const operator = await options.operator().catch(() => undefined);
    if (!operator) {
      send('expired', { reason: 'sign in again' });
      break;
    }
    try {
      const rows = await services.query(operator, { ...query, since, pageToken: after });
      for (const event of rows) send('audit', row(event));
      const last = rows.at(-1);
      if (last) {
        after = last.id;
        since = undefined;
        lastWrite = clock.nowMs();
      }
    } catch (error) {
      send('problem', { message: error instanceof Error ? error.message : 'audit unavailable' });
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'audit feed query failed');
    }
    if (clock.nowMs() - lastWrite > HEARTBEAT_MS) {
      res.write(': heartbeat\n\n');
      lastWrite = clock.nowMs();
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  res.end();
}
