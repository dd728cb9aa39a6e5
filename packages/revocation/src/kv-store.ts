import { AppError, isWrongLastSequence, type RevocationRecord } from '@aoa/core';
import type { KV } from '@nats-io/kv';
import type { RevocationStore } from './write.js';

/**
 * `aoa_revocations` through KV: absolute entries by `create()` (compare-and-set on "no value", so two
 * replicas revoking one jti agree on one record), watermarks by `put()` keeping the later time.
 */
export class KvRevocationStore implements RevocationStore {
  constructor(private readonly kv: KV) {}

  async write(
    key: string,
    record: RevocationRecord,
    absolute: boolean,
  ): Promise<{ record: RevocationRecord; repeated: boolean }> {
    try {
      if (!absolute) {
        const previous = await this.current(key);
        if (previous && previous.at_ms >= record.at_ms) return { record: previous, repeated: true };
        await this.kv.put(key, JSON.stringify(record));
        return { record, repeated: false };
      }
      try {
        await this.kv.create(key, JSON.stringify(record));
        return { record, repeated: false };
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        const existing = await this.current(key);
        if (existing) return { record: existing, repeated: true };
        throw error;
      }
    } catch (error) {
      throw new AppError('unavailable', 'revocation store unavailable', { cause: error });
    }
  }

  private async current(key: string): Promise<RevocationRecord | undefined> {
    const entry = await this.kv.get(key);
    if (entry?.operation !== 'PUT') return undefined;
    return entry.json<RevocationRecord>();
  }
}
