import { type Clock, deliveredByJetStream, grantExpired, type Logger, type Subjects } from '@aoa/core';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import type { GrantStore } from './grant-store.js';

const RemintRequest = z.object({
  kid: z.string().min(1).max(128),
  timeout_ms: z.number().int().min(100).max(600_000),
});

/** The answer to `aoa.rotator.remint`. */
export interface RemintReply {
  grants: number;
  reminted: number;
  /** Grants not re-minted and delivered before the timeout. */
  failed: string[];
}

export interface RemintDeps {
  nc: NatsConnection;
  subjects: Subjects;
  store: GrantStore;
  /**
   * Marks a grant due now (every replica's loop sees it), its next mint not to be signed with
   * `avoidKid`, and kicks this replica's loop.
   */
  rotateNow(grantId: string, avoidKid: string): Promise<void>;
  clock: Clock;
  log: Logger;
}

/**
 * Serves `aoa.rotator.remint` in queue group `rotator`, the issuer's emergency key rotation asking for
 * every active grant to be minted again under the new key: request `{kid, timeout_ms}` (`kid` the key
 * retired: no re-mint counts unless signed with another, even by an issuer replica late to switch), reply
 * {@link RemintReply} once every grant has been re-minted and delivered after the request (by whichever
 * replica holds its lease) or the timeout passed, or `{error}` for a malformed request. Never throws.
 */
export function serveRemint(deps: RemintDeps): Subscription {
  const log = deps.log.child({ component: 'remint' });
  return deps.nc.subscribe(deps.subjects.rotatorRemint(), {
    queue: 'rotator',
    callback: (error, msg) => {
      if (error) {
        log.warn({ err: error.message }, 'remint subscription error');
        return;
      }
      if (deliveredByJetStream(msg)) {
        log.warn('ignoring a remint request delivered by JetStream');
        return;
      }
      void (async () => {
        const parsed = RemintRequest.safeParse(safeJson(msg.string()));
        if (!parsed.success) {
          msg.respond(JSON.stringify({ error: 'request must be {kid, timeout_ms (100..600000)}' }));
          return;
        }
        const reply = await remintAll(deps, parsed.data.kid, parsed.data.timeout_ms);
        log.info({ retiredKid: parsed.data.kid, ...reply, failed: reply.failed.length }, 'grants re-minted');
        msg.respond(JSON.stringify(reply));
      })().catch((failure: unknown) => {
        log.error({ err: failure }, 'remint failed');
        msg.respond(JSON.stringify({ error: 'remint failed' }));
      });
    },
  });
}

async function remintAll(deps: RemintDeps, retiredKid: string, timeoutMs: number): Promise<RemintReply> {
  const { store, clock } = deps;
  const startMs = clock.nowMs();
  const nowS = startMs / 1000;
  const grants = store.listGrants().filter((g) => g.state === 'active' && !grantExpired(g, nowS));
  const pending = new Set(grants.map((g) => g.id));
  await Promise.all([...pending].map((id) => deps.rotateNow(id, retiredKid)));
  const deadline = startMs + timeoutMs;
  while (pending.size > 0 && clock.nowMs() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const id of pending) if ((store.lease(id)?.record.rotated_ms ?? 0) >= startMs) pending.delete(id);
  }
  return { grants: grants.length, reminted: grants.length - pending.size, failed: [...pending].sort() };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
