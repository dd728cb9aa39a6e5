import { type GrantRecord, grantKeys } from '@aoa/core';
import type { KV, KvEntry } from '@nats-io/kv';

/** What revoking a grant needs from KV `aoa_grants`: the grant's parent client, and its tombstone. */
export interface GrantRegistry {
  /** The `parent_client` of a grant, or undefined when there is no such grant. */
  parentClient(grantId: string): Promise<string | undefined>;
  /**
   * Marks a grant `state: revoked`, the durable tombstone every issuer replica refuses to mint for
   * (the `grant.<id>` revocation entry ages out with its bucket; the tombstone stays until an
   * administrator restores the grant). Compare-and-set, retried on a race.
   */
  tombstone(grantId: string, reason: string): Promise<void>;
}

const live = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';

/**
 * The {@link GrantRegistry} over KV `aoa_grants`.
 *
 * @example
 * const grants = kvGrantRegistry(await kvm.create(BUCKETS.grants, { history: 1 }));
 * await grants.tombstone(grantId, 'grant revoked');
 */
export function kvGrantRegistry(kv: KV): GrantRegistry {
  const read = async (id: string) => {
    const entry = await kv.get(grantKeys.grant(id));
    return live(entry)
      ? { grant: entry.json<GrantRecord & Record<string, unknown>>(), revision: entry.revision }
      : undefined;
  };
  return {
    parentClient: async (id) => (await read(id))?.grant.parent_client,
    tombstone: async (id, reason) => {
      // Compare-and-set on the revision read; a write that raced it is read again, so the tombstone is
      // not lost to an unrelated update. A restore racing a revocation ends revoked (fail closed): the
      // administrator restores again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const found = await read(id);
        if (!found || found.grant.state === 'revoked') return;
        const written = await kv
          .update(
            grantKeys.grant(id),
            JSON.stringify({ ...found.grant, state: 'revoked', revoked_reason: reason }),
            found.revision,
          )
          .then(
            () => true,
            () => false,
          );
        if (written) return;
      }
    },
  };
}
