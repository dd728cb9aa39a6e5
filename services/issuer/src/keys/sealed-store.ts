import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes } from 'node:crypto';
import { AppError, type SigningKey } from '@aoa/core';
import type { KV } from '@nats-io/kv';
import type { PrivateKeyStore, RingState } from './types.js';

const RING_KEY = 'ring';

interface SealedRecord {
  kid: string;
  alg: SigningKey['alg'];
  /** base64url: 12-byte IV, then ciphertext, then the 16-byte GCM tag; AAD is the kid. */
  sealed: string;
}

/**
 * Production key storage: private JWKs sealed with AES-256-GCM under a key-encryption key read from a
 * file, kept in KV `aoa_signing_keys` (readable by the issuer alone) and shared by every replica.
 */
export class SealedKeyStore implements PrivateKeyStore {
  readonly kind = 'sealed' as const;

  constructor(
    private readonly kv: KV,
    private readonly kek: Buffer,
  ) {
    if (kek.length !== 32) throw new TypeError('key-encryption key must be 32 bytes');
  }

  async load() {
    const ringEntry = await this.kv.get(RING_KEY);
    if (ringEntry?.operation !== 'PUT') return undefined;
    const ring = ringEntry.json<RingState>();
    const keys = new Map<string, SigningKey>();
    for (const kid of [ring.active, ring.standby]) {
      const entry = await this.kv.get(`key.${kid}`);
      if (entry?.operation !== 'PUT') {
        throw new AppError('internal', `sealed key ${kid} named by the ring is missing`);
      }
      keys.set(kid, this.unseal(entry.json<SealedRecord>()));
    }
    return { ring, keys, revision: ringEntry.revision };
  }

  async saveKey(key: SigningKey): Promise<void> {
    await this.kv.put(`key.${key.kid}`, JSON.stringify(this.seal(key)));
  }

  async watchRing(onChange: () => void): Promise<() => void> {
    const watcher = await this.kv.watch({ key: RING_KEY, include: 'updates' });
    void (async () => {
      for await (const _ of watcher) onChange();
    })();
    return () => watcher.stop();
  }

  async saveRing(ring: RingState, expectedRevision: number): Promise<number | false> {
    try {
      return expectedRevision === 0
        ? await this.kv.create(RING_KEY, JSON.stringify(ring))
        : await this.kv.update(RING_KEY, JSON.stringify(ring), expectedRevision);
    } catch (error) {
      if (error instanceof Error && /wrong last sequence/i.test(error.message)) return false;
      throw error;
    }
  }

  private seal(key: SigningKey): SealedRecord {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.kek, iv);
    cipher.setAAD(Buffer.from(key.kid));
    const plain = Buffer.from(JSON.stringify(key.privateKey.export({ format: 'jwk' })));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      kid: key.kid,
      alg: key.alg,
      sealed: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url'),
    };
  }

  private unseal(record: SealedRecord): SigningKey {
    const raw = Buffer.from(record.sealed, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.kek, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(record.kid));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
      return {
        kid: record.kid,
        alg: record.alg,
        privateKey: createPrivateKey({ key: JSON.parse(plain.toString()), format: 'jwk' }),
      };
    } catch {
      throw new AppError(
        'internal',
        `sealed key ${record.kid} cannot be opened with this key-encryption key`,
      );
    }
  }
}
