import type { KV, KvEntry } from '@nats-io/kv';
import { type BucketWatch, watchBucket } from './bus/kv-watch.js';
import { type AoaClaims, actorApp } from './claims.js';
import { sha256Hex } from './ids.js';
import type { Logger } from './logger.js';
import { type NoticeSource, type RevocationNoticeEntry, subscribeNotices } from './revocation-notices.js';

/**
 * Keys of KV `aoa_revocations` (contract section 5). `jti`, `kid` and `grant` entries are absolute;
 * `app` and `sub` entries are not-before watermarks in milliseconds, compared with `aoa_iat_ms`.
 */
/** How many subjects' hashed revocation keys a mirror remembers before it starts afresh. */
const SUB_KEYS_REMEMBERED = 4096;

export const revocationKeys = {
  jti: (jti: string) => `jti.${jti}`,
  app: (env: string, app: string) => `app.${env}.${app}`,
  sub: (sub: string) => `sub.${sha256Hex(sub)}`,
  kid: (kid: string) => `kid.${kid}`,
  grant: (grant: string) => `grant.${grant}`,
};

/** The value stored under every revocation key. */
export interface RevocationRecord {
  id: string;
  /** Revocation time; for watermarks, tokens issued at or before it are revoked. */
  at_ms: number;
  reason: string;
  /** Additive: what was revoked (`jti`, `app`, `sub`, `kid`, `grant`). */
  kind?: string;
  /** Additive: who revoked, `client:<id>`, `jkt:<thumbprint>` or `operator:<sub>`. */
  by?: string;
}

/** The fields of a token that revocation rules look at. */
export type RevocableToken = Pick<
  AoaClaims,
  'jti' | 'sub' | 'env' | 'aoa_iat_ms' | 'aoa_lineage' | 'act' | 'aoa_grant'
> & {
  kid: string;
};

/**
 * A local, watch-fed copy of `aoa_revocations` that answers "is this token, or any ancestor, revoked?"
 * in O(depth) with no network call. Before its first full sync it reports `ready() === false`; callers
 * refuse until then. With a {@link NoticeSource}, each revocation notice is applied the moment it
 * arrives, ahead of the KV watch (one core-NATS message per connection, shared by every mirror on it,
 * instead of a JetStream delivery per watcher):
 * notices can only add or raise revocations, never lift one, so a forged notice can deny service but
 * never let a revoked token through; the watch stays the source of truth and catches up any missed one.
 */
export class RevocationMirror {
  private readonly entries = new Map<string, RevocationRecord>();
  private syncedAtMs: number | undefined;
  private watch: BucketWatch | undefined;
  private unsubscribeNotices: (() => void) | undefined;
  private readonly listeners = new Set<(key: string) => void>();
  private readonly subKeys = new Map<string, string>();

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    private readonly notices?: NoticeSource,
  ) {}

  async start(): Promise<void> {
    this.watch = await watchBucket(
      this.kv,
      (entry) => {
        this.apply(entry);
        this.notify(entry.key);
      },
      this.log,
      'revocations',
    );
    void this.watch.synced.then(() => {
      this.syncedAtMs ??= Date.now();
    });
    if (this.notices) {
      this.unsubscribeNotices = subscribeNotices(this.notices, this.log, (notice) =>
        this.applyNotice(notice),
      );
    }
  }

  /** Applies one validated notice: it may add a revocation or raise a watermark, never lift one. */
  private applyNotice({ id, key, kind, atMs }: RevocationNoticeEntry): void {
    const held = this.entries.get(key);
    if (held && held.at_ms >= atMs) return;
    // Absolute entries revoke whatever their time; watermarks only ever move forward.
    if (held && !key.startsWith('app.') && !key.startsWith('sub.')) return;
    this.entries.set(key, { id, at_ms: atMs, reason: '', ...(kind === undefined ? {} : { kind }) });
    this.notify(key);
  }

  /**
   * Calls `listener` with the key of every entry applied, from the watch or a notice (after it is
   * applied, so a check made in the listener already sees it). Returns a function that removes the listener.
   */
  onChange(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(key: string): void {
    for (const listener of this.listeners) {
      try {
        listener(key);
      } catch (error) {
        this.log.warn({ err: error, key }, 'revocation change listener threw');
      }
    }
  }

  /** Resolves once the mirror holds every revocation that existed when it started. */
  async whenSynced(): Promise<void> {
    if (!this.watch) throw new Error('revocation mirror not started');
    await this.watch.synced;
  }

  ready(): boolean {
    return this.watch?.isSynced() ?? false;
  }

  stop(): void {
    this.watch?.stop();
    this.unsubscribeNotices?.();
  }

  /** When the first full sync completed (ms since the epoch), or undefined before it. */
  syncedAt(): number | undefined {
    return this.syncedAtMs;
  }

  /** The highest bucket revision applied so far: compare with the bucket's last sequence to catch up. */
  lastRevision(): number {
    return this.watch?.lastRevision() ?? 0;
  }

  /**
   * Resolves once every entry written up to now has been applied (after a reconnect, a missed notice
   * is caught up from the bucket itself), or false after `timeoutMs`.
   */
  async catchUp(timeoutMs = 5000): Promise<boolean> {
    const target = (await this.kv.status()).streamInfo.state.last_seq;
    const deadline = Date.now() + timeoutMs;
    while (this.lastRevision() < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.lastRevision() >= target;
  }

  /** Every revocation in force, sorted by key: for listings, not for the hot path. */
  list(): Array<{ key: string; record: RevocationRecord }> {
    return [...this.entries.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, record]) => ({ key, record }));
  }

  /** The revocation stored under one key, if any. */
  get(key: string): RevocationRecord | undefined {
    return this.entries.get(key);
  }

  private apply(entry: KvEntry): void {
    if (entry.operation !== 'PUT') {
      this.entries.delete(entry.key);
      return;
    }
    try {
      const record = entry.json<RevocationRecord>();
      if (typeof record?.at_ms !== 'number') throw new TypeError('at_ms missing');
      this.entries.set(entry.key, record);
    } catch {
      this.log.warn({ key: entry.key, revision: entry.revision }, 'ignoring malformed revocation entry');
    }
  }

  /** The first revocation that applies to the token or one of its ancestors, or undefined. */
  check(token: RevocableToken): { key: string; record: RevocationRecord } | undefined {
    const subKey = this.subKey(token.sub);
    const subWatermark = this.entries.get(subKey);
    const self = {
      jti: token.jti,
      app: actorApp(token.act.sub) ?? '',
      env: token.env,
      iat_ms: token.aoa_iat_ms,
      kid: token.kid,
      grant: token.aoa_grant,
    };
    for (const link of [...token.aoa_lineage, self]) {
      const absolute = [revocationKeys.jti(link.jti), revocationKeys.kid(link.kid)];
      if (link.grant) absolute.push(revocationKeys.grant(link.grant));
      for (const key of absolute) {
        const record = this.entries.get(key);
        if (record) return { key, record };
      }
      const appKey = revocationKeys.app(link.env, link.app);
      const appWatermark = this.entries.get(appKey);
      if (appWatermark && link.iat_ms <= appWatermark.at_ms) return { key: appKey, record: appWatermark };
      if (subWatermark && link.iat_ms <= subWatermark.at_ms) {
        return { key: subKey, record: subWatermark };
      }
    }
    return undefined;
  }

  /** `sub.<sha256(sub)>`, remembered for the subjects seen lately: a verifier checks the same few all day. */
  private subKey(sub: string): string {
    let key = this.subKeys.get(sub);
    if (key === undefined) {
      if (this.subKeys.size >= SUB_KEYS_REMEMBERED) this.subKeys.clear();
      key = revocationKeys.sub(sub);
      this.subKeys.set(sub, key);
    }
    return key;
  }
}
