import type { PublishedKeyRecord, SigningKey } from '@aoa/core';

/** What KV `aoa_keys` holds under each `kid`. */
export type PublishedKey = PublishedKeyRecord;

/** Which key signs and which waits, shared by every issuer replica. */
export interface RingState {
  active: string;
  standby: string;
}

/** Where private keys live: process memory (`memory`) or sealed in KV (`sealed`). */
export interface PrivateKeyStore {
  readonly kind: 'memory' | 'sealed';
  /** The ring and its private keys, or undefined when none exists yet. */
  load(): Promise<{ ring: RingState; keys: Map<string, SigningKey>; revision: number } | undefined>;
  saveKey(key: SigningKey): Promise<void>;
  /** Compare-and-set of the ring; false when another replica changed it first. */
  saveRing(ring: RingState, expectedRevision: number): Promise<number | false>;
  /** Calls `onChange` whenever another replica changes the ring; returns a stop function. */
  watchRing(onChange: () => void): Promise<() => void>;
}
