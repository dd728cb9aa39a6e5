import {
  AppError,
  deliveredByJetStream,
  type GrantMirror,
  type GrantRecord,
  grantKeys,
  type Logger,
  type Subjects,
  toAppError,
} from '@aoa/core';
import { kvGrantRegistry } from '@aoa/revocation';
import type { KV } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Counter, type Registry } from 'prom-client';
import { type GrantMintContext, type GrantSource, mintForGrant } from '../domain/grant-mint.js';
import type { KeyManager } from '../keys/key-manager.js';

/**
 * A grant's record read fresh from KV `aoa_grants` on every mint (one direct get: its state, a
 * tombstone written a moment ago, is never missed), its agents from the issuer's watch-fed mirror (no
 * key listing per mint); tombstones are written to the KV itself.
 */
export function mirrorGrantSource(mirror: GrantMirror, kv: KV): GrantSource {
  return {
    grant: async (id) => {
      const entry = await kv.get(grantKeys.grant(id));
      return entry?.operation === 'PUT' ? entry.json<GrantRecord>() : undefined;
    },
    agents: async (grantId) => mirror.agents(grantId),
    tombstone: kvGrantRegistry(kv).tombstone,
  };
}

/**
 * Serves `aoa.issuer.mint` in queue group `aoa-issuer` (one replica answers each request): request
 * `{grant_id, min_revision?, not_kid?}`, reply `{deliveries:[{agent, jti, exp, jwe}]}` or
 * `{error:{code, message}}`. `min_revision` is the rotator's view of `aoa_grants`: this replica's mirror
 * catches up to it first, so an agent enrolled a moment ago is minted for. `not_kid` is the key an
 * emergency rotation retires: a replica still signing with it catches up with the shared key ring,
 * and answers `unavailable` (the rotator retries) if it still would. Never throws; internal failures
 * answer `internal` with generic text.
 */
export function serveGrantMint(
  nc: NatsConnection,
  subjects: Subjects,
  ctx: GrantMintContext,
  mirror: GrantMirror,
  keys: Pick<KeyManager, 'active' | 'sync'>,
  registry: Registry,
  log: Logger,
): Subscription {
  const mintLog = log.child({ component: 'grant-mint' });
  const mints = new Counter({
    name: 'aoa_issuer_grant_mints_total',
    help: 'aoa.issuer.mint answers by result code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  return nc.subscribe(subjects.issuerMint(), {
    queue: 'aoa-issuer',
    callback: (error, msg) => {
      if (error) {
        mintLog.warn({ err: error.message }, 'mint subscription error');
        return;
      }
      if (deliveredByJetStream(msg)) {
        mints.inc({ code: 'not_from_rotator' });
        mintLog.warn('ignoring a mint request delivered by JetStream');
        return;
      }
      void (async () => {
        let request: { grant_id?: unknown; min_revision?: unknown; not_kid?: unknown } | undefined;
        try {
          request = JSON.parse(msg.string()) as typeof request;
        } catch {
          request = undefined;
        }
        const grantId = request?.grant_id;
        try {
          await caughtUp(mirror, request?.min_revision);
          await notSigningWith(keys, request?.not_kid);
          const deliveries = await mintForGrant(ctx, grantId);
          mints.inc({ code: 'ok' });
          mintLog.info({ grant: grantId, deliveries: deliveries.length }, 'grant minted');
          msg.respond(JSON.stringify({ deliveries }));
        } catch (failure) {
          const appError = toAppError(failure);
          mints.inc({ code: appError.code });
          if (appError.code === 'internal')
            mintLog.error({ err: appError.cause ?? appError, grant: grantId }, 'grant mint failed');
          else
            mintLog.info(
              { grant: grantId, code: appError.code, reason: appError.message, rule: appError.rule },
              'grant mint refused',
            );
          msg.respond(JSON.stringify({ error: { code: appError.code, message: appError.message } }));
        }
      })().catch(() => undefined);
    },
  });
}

/** Waits (up to 2 s) until the grant mirror holds the revision the rotator saw; unavailable otherwise. */
async function caughtUp(mirror: GrantMirror, minRevision: unknown): Promise<void> {
  if (minRevision === undefined) return;
  if (typeof minRevision !== 'number' || !Number.isSafeInteger(minRevision) || minRevision < 0) {
    throw new AppError('invalid_argument', 'min_revision: must be a non-negative integer');
  }
  if (!(await mirror.waitFor(minRevision))) {
    throw new AppError('unavailable', 'grant view behind the rotator; retry');
  }
}

/** Refuses (`unavailable`) while this replica, caught up with the shared ring, still signs with `kid`. */
async function notSigningWith(keys: Pick<KeyManager, 'active' | 'sync'>, kid: unknown): Promise<void> {
  if (kid === undefined) return;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) {
    throw new AppError('invalid_argument', 'not_kid: must be a key id');
  }
  if (keys.active().kid !== kid) return;
  await keys.sync();
  if (keys.active().kid === kid) {
    throw new AppError('unavailable', 'this replica still signs with the key being retired; retry');
  }
}
