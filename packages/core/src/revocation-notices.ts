import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { deliveredByJetStream } from './bus/senders.js';
import type { Logger } from './logger.js';

/** Where revocation notices arrive: core NATS `<prefix>.revoked.all`, published as each is written. */
export interface NoticeSource {
  nc: NatsConnection;
  /** `Subjects.revokedAll()`. */
  subject: string;
}

/** A notice as every mirror applies it, after validation. */
export interface RevocationNoticeEntry {
  id: string;
  key: string;
  kind: string | undefined;
  atMs: number;
}

const NOTICE_KEY = /^(jti|grant|kid|app|sub)\.[A-Za-z0-9_=.-]{1,200}$/;

/** Parses and validates one notice `{revocation_id, key, kind, at_ms}`; a reason when it is not one. */
export function parseNotice(text: string): RevocationNoticeEntry | string {
  let notice: { revocation_id?: unknown; key?: unknown; kind?: unknown; at_ms?: unknown };
  try {
    notice = JSON.parse(text) as typeof notice;
  } catch {
    return 'not JSON';
  }
  const { revocation_id: id, key, kind, at_ms: atMs } = notice ?? {};
  if (
    typeof key !== 'string' ||
    !NOTICE_KEY.test(key) ||
    typeof id !== 'string' ||
    typeof atMs !== 'number' ||
    !Number.isSafeInteger(atMs)
  ) {
    return 'malformed';
  }
  return { id, key, kind: typeof kind === 'string' ? kind : undefined, atMs };
}

type NoticeHandler = (notice: RevocationNoticeEntry) => void;

interface Hub {
  sub: Subscription;
  handlers: Set<NoticeHandler>;
}

const hubs = new WeakMap<NatsConnection, Map<string, Hub>>();

/**
 * Calls `handler` with every valid notice on the source's subject. Every mirror on one connection
 * shares one subscription: the server sends each notice once per connection, not once per mirror,
 * and it is parsed and validated once (an invalid one is logged once). Returns the unsubscribe.
 */
export function subscribeNotices(source: NoticeSource, log: Logger, handler: NoticeHandler): () => void {
  let bySubject = hubs.get(source.nc);
  if (!bySubject) {
    bySubject = new Map();
    hubs.set(source.nc, bySubject);
  }
  let hub = bySubject.get(source.subject);
  if (!hub || hub.sub.isClosed()) {
    const handlers = new Set<NoticeHandler>();
    const sub = source.nc.subscribe(source.subject, {
      callback: (error, msg) => {
        if (error) return;
        if (deliveredByJetStream(msg)) {
          log.warn({ subject: msg.subject }, 'ignoring a revocation notice delivered by JetStream');
          return;
        }
        const notice = parseNotice(msg.string());
        if (typeof notice === 'string') {
          log.warn({ reason: notice }, 'ignoring a revocation notice');
          return;
        }
        for (const each of handlers) each(notice);
      },
    });
    hub = { sub, handlers };
    bySubject.set(source.subject, hub);
  }
  const { handlers, sub } = hub;
  handlers.add(handler);
  return () => {
    handlers.delete(handler);
    if (handlers.size === 0 && bySubject.get(source.subject)?.sub === sub) {
      bySubject.delete(source.subject);
      sub.unsubscribe();
    }
  };
}
