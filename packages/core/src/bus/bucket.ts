import type { KV, Kvm } from '@nats-io/kv';

/**
 * Opens (creating it if absent) one of aoa's KV buckets the way every service does: one value per key,
 * file storage, `replicas` copies, and entries that expire after `maxAgeMs` when given. Replicas
 * started together all find the bucket missing and race to add its stream; a loser, answered
 * "subjects overlap" or "stream name already in use", opens the winner's.
 *
 * @example
 * const replayKv = await openBucket(kvm, BUCKETS.replay, { replicas: 1, maxAgeMs: 300_000 });
 */
export async function openBucket(
  kvm: Kvm,
  name: string,
  options: { replicas: number; maxAgeMs?: number },
): Promise<KV> {
  const config = {
    history: 1,
    storage: 'file' as const,
    replicas: options.replicas,
    ...(options.maxAgeMs === undefined ? {} : { ttl: options.maxAgeMs }),
  };
  try {
    return await kvm.create(name, config);
  } catch (error) {
    if (!lostCreateRace(error)) throw error;
    return kvm.create(name, config);
  }
}

const lostCreateRace = (error: unknown): boolean =>
  error instanceof Error && /subjects overlap|already in use/i.test(error.message);
