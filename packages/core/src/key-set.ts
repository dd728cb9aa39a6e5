import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { JWK } from 'jose';
import { watchBucket } from './bus/kv-watch.js';
import type { Logger } from './logger.js';

/** An issuer public key as published in KV `aoa_keys`. */
export interface PublishedKeyRecord {
  kid: string;
  alg: 'EdDSA' | 'ES256';
  jwk: JWK;
  state: 'standby' | 'active' | 'retired';
  created_ms: number;
  activated_ms?: number;
  retired_ms?: number;
}

/**
 * A watch-fed local copy of `aoa_keys`: the issuer's published public keys, imported once, for
 * verifying aoa tokens and serving the JWKS without a network call per request.
 */
export class KeySetMirror {
  private readonly keys = new Map<string, { record: PublishedKeyRecord; key: KeyObject }>();
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const watch = await watchBucket(
      this.kv,
      (entry) => {
        if (entry.operation !== 'PUT') this.keys.delete(entry.key);
        else this.add(entry.key, entry.json<PublishedKeyRecord>());
      },
      this.log,
      'keys',
    );
    this.stopWatch = () => watch.stop();
    await watch.synced;
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** The public key for a kid, or undefined when it was never published (or has been removed). */
  get(kid: string): { record: PublishedKeyRecord; key: KeyObject } | undefined {
    return this.keys.get(kid);
  }

  /** Every published key's record (states and times). */
  records(): PublishedKeyRecord[] {
    return [...this.keys.values()].map((k) => k.record);
  }

  /** Every published public key, for `jwks_uri`. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.keys.values()].map((k) => k.record.jwk) };
  }

  /** Waits until a kid is visible locally (a key published by this process a moment ago). */
  async waitFor(kid: string, timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.keys.has(kid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.keys.has(kid);
  }

  private add(kid: string, record: PublishedKeyRecord): void {
    try {
      if (record.kid !== kid || 'd' in record.jwk) throw new TypeError('bad record');
      this.keys.set(kid, { record, key: createPublicKey({ key: record.jwk as JsonWebKey, format: 'jwk' }) });
    } catch {
      this.log.warn({ kid }, 'ignoring malformed published key');
    }
  }
}
