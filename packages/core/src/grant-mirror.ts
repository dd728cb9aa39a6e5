import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { type BucketWatch, watchBucket } from './bus/kv-watch.js';
import type { AgentRecord, GrantRecord } from './grants.js';
import type { Logger } from './logger.js';

/** A rotation lease as the mirror holds it: the record (the rotator's shape) and its KV revision. */
export interface MirroredLease {
  value: unknown;
  revision: number;
}

/** One consistent picture of the bucket, filled by one watch. */
interface View {
  grants: Map<string, GrantRecord>;
  /** Agents by grant id, then by agent id. */
  agents: Map<string, Map<string, AgentRecord>>;
  leases: Map<string, MirroredLease>;
  watch: BucketWatch;
}

const GRANT_KEY = /^grant\.([^.]+)$/;
const LEASE_KEY = /^lease\.([^.]+)$/;
const AGENT_KEY = /^agent\.([^.]+)\.([^.]+)$/;
const RESYNC_ATTEMPTS = 20;

/**
 * A watch-fed local copy of the grants and agent enrolments in KV `aoa_grants`, so the rotation loop,
 * `ListGrants` and the issuer's mint never list keys on the server (a key listing creates a consumer
 * per call, and under load stalled the loop).
 * Ready once the first watch has delivered the whole bucket; after every reconnect a fresh watch is
 * synchronised beside the old view and then replaces it, so a watch lost with the connection never
 * leaves a stale view. Writes stay compare-and-set on the KV; `waitFor` gives read-your-writes.
 */
export class GrantMirror {
  private view: View | undefined;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  /** Resolves once every grant and agent in the bucket is in the view. */
  async start(): Promise<void> {
    this.view = await this.synchronisedView();
    void this.resyncOnReconnect();
  }

  stop(): void {
    this.stopped = true;
    this.view?.watch.stop();
  }

  /** Every grant, oldest first. */
  grants(): GrantRecord[] {
    return [...(this.view?.grants.values() ?? [])].sort((a, b) => a.created_at_ms - b.created_at_ms);
  }

  /**
   * A grant's rotation lease with its revision, as of the view (a compare-and-set with that revision
   * fails harmlessly when the view is a moment behind).
   */
  lease(grant: string): MirroredLease | undefined {
    return this.view?.leases.get(grant);
  }

  /** A grant's enrolled agents, by agent id. */
  agents(grant: string): AgentRecord[] {
    const agents = this.view?.agents.get(grant)?.values() ?? [];
    return [...agents].sort((a, b) => a.agent.localeCompare(b.agent));
  }

  /** The bucket revision the view holds: a reader elsewhere can wait until it has caught up to it. */
  lastRevision(): number {
    return this.view?.watch.lastRevision() ?? 0;
  }

  /** Waits until the view holds bucket revision `revision` (a write this replica just made). */
  async waitFor(revision: number, timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((this.view?.watch.lastRevision() ?? 0) < revision && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return (this.view?.watch.lastRevision() ?? 0) >= revision;
  }

  /** Waits until the view holds everything written to the bucket so far (deletes return no revision). */
  async catchUp(timeoutMs = 2000): Promise<boolean> {
    return this.waitFor((await this.kv.status()).streamInfo.state.last_seq, timeoutMs);
  }

  private async synchronisedView(): Promise<View> {
    const view = {
      grants: new Map<string, GrantRecord>(),
      agents: new Map<string, Map<string, AgentRecord>>(),
      leases: new Map<string, MirroredLease>(),
    };
    const watch = await watchBucket(this.kv, (entry) => this.apply(view, entry), this.log, 'grants');
    await watch.synced;
    return { ...view, watch };
  }

  private async resyncOnReconnect(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (this.stopped) return;
      if (status.type !== 'reconnect') continue;
      for (let attempt = 1; attempt <= RESYNC_ATTEMPTS && !this.stopped; attempt++) {
        try {
          const fresh = await this.synchronisedView();
          const old = this.view;
          this.view = fresh;
          old?.watch.stop();
          if (this.stopped) fresh.watch.stop();
          this.log.info({ grants: fresh.grants.size }, 'grant view re-synchronised after reconnect');
          break;
        } catch (error) {
          // JetStream may not answer for a moment after a server restart; the old view serves meanwhile.
          this.log.warn({ err: (error as Error).message, attempt }, 'grant view re-sync failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        }
      }
    }
  }

  private apply({ grants, agents, leases }: Omit<View, 'watch'>, entry: KvEntry): void {
    const grant = GRANT_KEY.exec(entry.key);
    const agent = AGENT_KEY.exec(entry.key);
    const lease = LEASE_KEY.exec(entry.key);
    const removed = entry.operation !== 'PUT';
    // A malformed entry removes what the key held before: the view never serves a superseded record.
    try {
      if (grant?.[1]) {
        const id = grant[1];
        grants.delete(id);
        if (!removed)
          grants.set(
            id,
            checked(entry.json<GrantRecord>(), (r) => r.id === id),
          );
      } else if (lease?.[1]) {
        leases.delete(lease[1]);
        if (!removed) leases.set(lease[1], { value: entry.json<unknown>(), revision: entry.revision });
      } else if (agent?.[1] && agent[2]) {
        const [, id, name] = agent;
        const own = agents.get(id) ?? new Map<string, AgentRecord>();
        own.delete(name);
        if (own.size === 0) agents.delete(id);
        if (!removed) {
          own.set(
            name,
            checked(entry.json<AgentRecord>(), (r) => r.grant === id && r.agent === name),
          );
          agents.set(id, own);
        }
      }
    } catch {
      this.log.warn({ key: entry.key, revision: entry.revision }, 'ignoring malformed grant-store entry');
    }
  }
}

function checked<T>(record: T, matchesKey: (record: T) => boolean): T {
  if (typeof record !== 'object' || record === null || !matchesKey(record)) {
    throw new TypeError('record does not match its key');
  }
  return record;
}
