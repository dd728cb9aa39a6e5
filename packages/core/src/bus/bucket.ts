import type { KV, Kvm } from '@nats-io/kv';

/**
 * Opens (creating it if absent) one of aoa's KV buckets the way every service does: one value per key,
 * file storage, `replicas` copies, and entries that expire after `maxAgeMs` when given.
 *
 * @example
 * const replayKv = await openBucket(kvm, BUCKETS.replay, { replicas: 1, maxAgeMs: 300_000 });
 */
export function openBucket(
  kvm: Kvm,
  name: string,
  options: { replicas: number; maxAgeMs?: number },
): Promise<KV> {
  return kvm.create(name, {
    history: 1,
    storage: 'file',
    replicas: options.replicas,
    ...(options.maxAgeMs === undefined ? {} : { ttl: options.maxAgeMs }),
  });
}
