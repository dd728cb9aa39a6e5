import {
  type AgentRecord,
  type GrantRecord,
  grantKeys,
  type Logger,
  type Subjects,
  toAppError,
} from '@aoa/core';
import { kvGrantRegistry } from '@aoa/revocation';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Counter, type Registry } from 'prom-client';
import { type GrantMintContext, type GrantSource, mintForGrant } from '../domain/grant-mint.js';

const live = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';

/** Reads grants and their agents from KV `aoa_grants`, fresh on every mint. */
export function kvGrantSource(kv: KV): GrantSource {
  return {
    grant: async (id) => {
      const entry = await kv.get(grantKeys.grant(id));
      return live(entry) ? entry.json<GrantRecord>() : undefined;
    },
    agents: async (grantId) => {
      const out: AgentRecord[] = [];
      for await (const key of await kv.keys(grantKeys.agentsOf(grantId))) {
        const entry = await kv.get(key);
        if (live(entry)) out.push(entry.json<AgentRecord>());
      }
      return out.sort((a, b) => a.agent.localeCompare(b.agent));
    },
    tombstone: kvGrantRegistry(kv).tombstone,
  };
}

/**
 * Serves `aoa.issuer.mint` in queue group `aoa-issuer` (one replica answers each request): request
 * `{grant_id}`, reply `{deliveries:[{agent, jti, exp, jwe}]}` or `{error:{code, message}}`. Never
 * throws; internal failures answer `internal` with generic text.
 */
export function serveGrantMint(
  nc: NatsConnection,
  subjects: Subjects,
  ctx: GrantMintContext,
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
      void (async () => {
        let grantId: unknown;
        try {
          grantId = (JSON.parse(msg.string()) as { grant_id?: unknown })?.grant_id;
        } catch {
          grantId = undefined;
        }
        try {
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
