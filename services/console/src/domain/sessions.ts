import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@aoa/core';
import type { OperatorCredential } from './services.js';

/** Who signed in, from the IdP's ID token. */
export interface Person {
  sub: string;
  name: string;
}

/** One signed-in browser. Held in this process only: never rendered, never logged. */
export interface Session {
  id: string;
  /** The synchroniser token every state-changing form must send back. */
  csrf: string;
  person: Person;
  /** The IdP access token the console exchanges for operator tokens, and when it expires. */
  idpAccessToken: string;
  idpExpiresAtMs: number;
  /** The current operator token, absent while the person holds none (policy refused, or expired). */
  operator: OperatorCredential | undefined;
  /** Policy's reason code for refusing this person an operator token, and when, if it did. */
  refusal: { reason: string; atMs: number } | undefined;
  /** The scope the last operator token was granted (`aoa:admin` or `aoa:owner`), asked for first. */
  scope: string | undefined;
  /** The operator token exchange in flight, shared by concurrent requests. */
  exchanging: Promise<OperatorCredential | undefined> | undefined;
  expiresAtMs: number;
}

/** A sign-in in progress: the PKCE verifier and state of one authorization request. */
export interface LoginTransaction {
  state: string;
  codeVerifier: string;
  expiresAtMs: number;
}

const LOGIN_TTL_MS = 10 * 60_000;
/** Sessions one person may hold at once (browsers, tabs signed in separately). */
const SESSIONS_PER_PERSON = 5;

const newSecret = (): string => randomBytes(32).toString('base64url');

/**
 * Sessions and sign-ins in progress, in memory, each with an absolute expiry, at most `maxSessions`
 * of each at once. A console replica keeps its own: run one, or route each browser to the same replica.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly logins = new Map<string, LoginTransaction>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxSessions: number,
  ) {}

  /** A new sign-in, or undefined while `maxSessions` are already in progress (refused, not evicted). */
  beginLogin(codeVerifier: string): LoginTransaction | undefined {
    this.sweep(this.logins);
    if (this.logins.size >= this.maxSessions) return undefined;
    const login = { state: newSecret(), codeVerifier, expiresAtMs: this.clock.nowMs() + LOGIN_TTL_MS };
    this.logins.set(login.state, login);
    return login;
  }

  /** The sign-in for `state`, consumed: a state is good for one callback. */
  takeLogin(state: string): LoginTransaction | undefined {
    const login = this.logins.get(state);
    this.logins.delete(state);
    return login && login.expiresAtMs > this.clock.nowMs() ? login : undefined;
  }

  /**
   * A new session. A person holds at most {@link SESSIONS_PER_PERSON} (their oldest ends); while
   * `maxSessions` are live the answer is undefined: nobody signing in can end anyone else's session.
   */
  create(fields: Pick<Session, 'person' | 'idpAccessToken' | 'idpExpiresAtMs'>): Session | undefined {
    this.sweep(this.sessions);
    const own = [...this.sessions.values()].filter((s) => s.person.sub === fields.person.sub);
    if (own.length >= SESSIONS_PER_PERSON && own[0]) this.sessions.delete(own[0].id);
    if (this.sessions.size >= this.maxSessions) return undefined;
    const session: Session = {
      ...fields,
      id: newSecret(),
      csrf: newSecret(),
      operator: undefined,
      refusal: undefined,
      scope: undefined,
      exchanging: undefined,
      expiresAtMs: this.clock.nowMs() + this.ttlMs,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for a cookie value; an expired one is removed and answers undefined. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAtMs <= this.clock.nowMs()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  size(): number {
    return this.sessions.size;
  }

  private sweep<T extends { expiresAtMs: number }>(entries: Map<string, T>): void {
    const now = this.clock.nowMs();
    for (const [key, entry] of entries) if (entry.expiresAtMs <= now) entries.delete(key);
  }
}

/** Whether a form's CSRF token is the session's (constant time). */
export function csrfMatches(session: Session, sent: string | null | undefined): boolean {
  if (!sent) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}
