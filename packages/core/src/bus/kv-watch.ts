import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from '../logger.js';

/** A running watch over a whole KV bucket. */
export interface BucketWatch {
  /** Resolves once every entry that existed when the watch started has been delivered. */
  readonly synced: Promise<void>;
  isSynced(): boolean;
  /** The highest bucket revision delivered so far. */
  lastRevision(): number;
  stop(): void;
}

/**
 * Watches every key of `kv` (last values first, then updates) and feeds each entry to `onEntry`, in
 * order. The mirrors of `aoa_keys` and `aoa_revocations` are built on it; the watch is an ordered
 * consumer, so it resumes by itself after a reconnect.
 *
 * @example
 * const watch = await watchBucket(kv, (entry) => apply(entry), log, 'revocations');
 * await watch.synced;
 */
export async function watchBucket(
  kv: KV,
  onEntry: (entry: KvEntry) => void,
  log: Logger,
  what: string,
): Promise<BucketWatch> {
  const status = await kv.status();
  const lastSeq = status.streamInfo.state.last_seq;
  const watcher = await kv.watch();
  let revision = 0;
  let synced = status.values === 0;
  let resolveSynced: () => void = () => undefined;
  const syncedPromise = new Promise<void>((resolve) => {
    resolveSynced = resolve;
  });
  if (synced) resolveSynced();
  void (async () => {
    for await (const entry of watcher) {
      onEntry(entry);
      revision = Math.max(revision, entry.revision);
      if (!synced && entry.revision >= lastSeq) {
        synced = true;
        resolveSynced();
      }
    }
  })().catch((error: unknown) => log.error({ err: error, bucket: what }, 'bucket watch ended'));
  return {
    synced: syncedPromise,
    isSynced: () => synced,
    lastRevision: () => revision,
    stop: () => watcher.stop(),
  };
}
