import type { SigningKey } from '@aoa/core';
import type { PrivateKeyStore, RingState } from './types.js';

/** Development key storage: private keys live and die with the process. */
export class MemoryKeyStore implements PrivateKeyStore {
  readonly kind = 'memory' as const;
  private readonly keys = new Map<string, SigningKey>();
  private ring: { ring: RingState; revision: number } | undefined;

  async load() {
    if (!this.ring) return undefined;
    return { ring: this.ring.ring, keys: new Map(this.keys), revision: this.ring.revision };
  }

  async saveKey(key: SigningKey): Promise<void> {
    this.keys.set(key.kid, key);
  }

  /** Memory keys belong to one process: no other replica can change the ring. */
  async watchRing(): Promise<() => void> {
    return () => undefined;
  }

  async saveRing(ring: RingState, expectedRevision: number): Promise<number | false> {
    if ((this.ring?.revision ?? 0) !== expectedRevision) return false;
    this.ring = { ring, revision: expectedRevision + 1 };
    return this.ring.revision;
  }
}
