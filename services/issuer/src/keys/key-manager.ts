import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { type Clock, jwkThumbprint, type Logger, type SigningKey } from '@aoa/core';
import type { KV } from '@nats-io/kv';
import type { JWK } from 'jose';
import type { PrivateKeyStore, PublishedKey, RingState } from './types.js';

export type KeyAuditor = (
  type: 'key.prepared' | 'key.activated' | 'key.retired',
  key: PublishedKey,
) => Promise<void>;

/**
 * Holds the issuer's signing keys: one active, one standby that is already published in `aoa_keys`,
 * so a restart or an emergency switch never signs with a key verifiers have not seen. The moment a key
 * becomes active, the next standby has already been prepared and published.
 */
export class KeyManager {
  private current: { ring: RingState; keys: Map<string, SigningKey>; revision: number } | undefined;
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly store: PrivateKeyStore,
    private readonly publicKv: KV,
    private readonly audit: KeyAuditor,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The algorithm of keys prepared from now on; keys already in the ring keep theirs until retired. */
    private readonly alg: SigningKey['alg'],
  ) {}

  get kind(): PrivateKeyStore['kind'] {
    return this.store.kind;
  }

  /** Loads the shared ring, or creates and publishes the first two keys; republishes anything missing. */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 5 && !this.current; attempt++) {
      const loaded = await this.store.load();
      if (loaded) {
        this.current = loaded;
        break;
      }
      const active = await this.prepare();
      const standby = await this.prepare();
      const revision = await this.store.saveRing({ active: active.kid, standby: standby.kid }, 0);
      if (revision === false) {
        await this.retireUnused([active, standby]);
        continue;
      }
      await this.publish(active, 'active');
      await this.audit('key.activated', await this.record(active, 'active'));
      this.current = {
        ring: { active: active.kid, standby: standby.kid },
        keys: new Map([
          [active.kid, active],
          [standby.kid, standby],
        ]),
        revision,
      };
    }
    if (!this.current) throw new Error('could not establish a signing key ring');
    await this.ensurePublished();
    this.stopWatch ??= await this.store.watchRing(() => void this.follow());
    this.log.info(
      {
        active: this.current.ring.active,
        standby: this.current.ring.standby,
        store: this.kind,
        alg: this.active().alg,
      },
      'signing keys ready',
    );
  }

  /**
   * Another replica switched keys (a scheduled or emergency rotation): sign with the ring's new active
   * key at once, so no replica keeps signing with a retired, possibly revoked, key.
   */
  private async follow(): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        const before = this.current?.revision;
        await this.sync();
        if (this.current && this.current.revision !== before) {
          this.log.info(
            { active: this.current.ring.active, standby: this.current.ring.standby },
            'following key ring change',
          );
        }
        return;
      } catch (error) {
        // A replica that keeps signing with a retired (perhaps revoked) key must not give up quietly.
        this.log.error({ err: error, attempt }, 'could not follow a key ring change; retrying');
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** The key that signs now. */
  active(): SigningKey {
    const key = this.current?.keys.get(this.current.ring.active);
    if (!key) throw new Error('key manager not started');
    return key;
  }

  standbyKid(): string {
    if (!this.current) throw new Error('key manager not started');
    return this.current.ring.standby;
  }

  /**
   * Switches away from `fromKid` (default: the active key, after catching up with the shared ring) to
   * the published standby at once, preparing the next standby before the switch is visible, so one is
   * always ready. When another replica has already switched away from `fromKid`, nothing more is
   * switched (`switched: false`): two replicas rotating at once rotate once.
   */
  async activateStandby(
    fromKid?: string,
  ): Promise<{ retired: string; active: string; standby: string; switched: boolean }> {
    await this.sync();
    const from = fromKid ?? this.active().kid;
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = this.current;
      if (!current) throw new Error('key manager not started');
      if (current.ring.active !== from) {
        return { retired: from, active: current.ring.active, standby: current.ring.standby, switched: false };
      }
      const next = await this.prepare();
      const ring = { active: current.ring.standby, standby: next.kid };
      const revision = await this.store.saveRing(ring, current.revision);
      if (revision === false) {
        await this.retireUnused([next]);
        await this.sync();
        continue;
      }
      const activated = current.keys.get(ring.active);
      const retired = current.keys.get(current.ring.active);
      if (!activated || !retired) throw new Error('ring keys missing');
      this.current = {
        ring,
        keys: new Map([
          [activated.kid, activated],
          [next.kid, next],
        ]),
        revision,
      };
      await this.publish(activated, 'active');
      await this.audit('key.activated', await this.record(activated, 'active'));
      await this.publish(retired, 'retired');
      await this.audit('key.retired', await this.record(retired, 'retired'));
      return { retired: retired.kid, active: activated.kid, standby: next.kid, switched: true };
    }
    throw new Error('the key ring kept changing under this replica; retry');
  }

  /** Catches up with the shared ring when another replica changed it (before acting on the ring). */
  async sync(): Promise<void> {
    const loaded = await this.store.load();
    if (loaded && (!this.current || loaded.revision > this.current.revision)) this.current = loaded;
  }

  /** Generates a key, stores its private half, publishes its public half as standby, audits it. */
  private async prepare(): Promise<SigningKey> {
    const { privateKey } =
      this.alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
    const kid = jwkThumbprint(publicJwk(privateKey));
    const key: SigningKey = { kid, alg: this.alg, privateKey };
    await this.store.saveKey(key);
    await this.publish(key, 'standby');
    await this.audit('key.prepared', await this.record(key, 'standby'));
    return key;
  }

  /**
   * Another replica changed the ring first, so keys prepared for it will never sign: mark them retired
   * rather than leave them advertised as the standby for good.
   */
  private async retireUnused(keys: SigningKey[]): Promise<void> {
    for (const key of keys) {
      await this.publish(key, 'retired');
      await this.audit('key.retired', await this.record(key, 'retired'));
    }
  }

  private async ensurePublished(): Promise<void> {
    if (!this.current) return;
    const { ring, keys } = this.current;
    for (const [kid, state] of [
      [ring.active, 'active'],
      [ring.standby, 'standby'],
    ] as const) {
      const entry = await this.publicKv.get(kid);
      const published = entry?.operation === 'PUT' ? entry.json<PublishedKey>() : undefined;
      const key = keys.get(kid);
      if (key && published?.state !== state) await this.publish(key, state);
    }
  }

  private async publish(key: SigningKey, state: PublishedKey['state']): Promise<void> {
    await this.publicKv.put(key.kid, JSON.stringify(await this.record(key, state)));
  }

  private async record(key: SigningKey, state: PublishedKey['state']): Promise<PublishedKey> {
    const entry = await this.publicKv.get(key.kid);
    const previous = entry?.operation === 'PUT' ? entry.json<PublishedKey>() : undefined;
    const now = this.clock.nowMs();
    return {
      kid: key.kid,
      alg: key.alg,
      jwk: { ...publicJwk(key.privateKey), kid: key.kid, alg: key.alg, use: 'sig' },
      state,
      created_ms: previous?.created_ms ?? now,
      ...(state === 'active' ? { activated_ms: previous?.activated_ms ?? now } : {}),
      ...(state === 'retired' ? { activated_ms: previous?.activated_ms, retired_ms: now } : {}),
    };
  }
}

function publicJwk(privateKey: KeyObject): JWK {
  const { kty, crv, x, y } = privateKey.export({ format: 'jwk' });
  return y ? { kty, crv, x, y } : { kty, crv, x };
}
