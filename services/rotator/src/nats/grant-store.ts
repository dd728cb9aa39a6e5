import { type AgentRecord, AppError, type GrantRecord, grantKeys } from '@aoa/core';
import type { KV, KvEntry } from '@nats-io/kv';
import { checkJoinToken, type JoinTokenRecord } from '../domain/join-token.js';
import type { LeaseRecord } from '../domain/schedule.js';

const live = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';

/**
 * KV `aoa_grants`, shared by every rotator replica: grants, agent enrolments, join-token hashes and
 * rotation leases. Every change that two replicas could race on is a compare-and-set on the revision.
 */
export class GrantStore {
  constructor(private readonly kv: KV) {}

  async grant(id: string): Promise<{ record: GrantRecord; revision: number } | undefined> {
    const entry = await this.kv.get(grantKeys.grant(id));
    return live(entry) ? { record: entry.json<GrantRecord>(), revision: entry.revision } : undefined;
  }

  async createGrant(record: GrantRecord): Promise<void> {
    await this.kv.create(grantKeys.grant(record.id), JSON.stringify(record));
  }

  /** Compare-and-set; a concurrent change is `failed_precondition` (the caller may retry). */
  async updateGrant(record: GrantRecord, revision: number): Promise<void> {
    try {
      await this.kv.update(grantKeys.grant(record.id), JSON.stringify(record), revision);
    } catch {
      throw new AppError('failed_precondition', 'grant changed concurrently; retry');
    }
  }

  async listGrants(): Promise<GrantRecord[]> {
    const out: GrantRecord[] = [];
    for await (const key of await this.kv.keys('grant.*')) {
      const entry = await this.kv.get(key);
      if (live(entry)) out.push(entry.json<GrantRecord>());
    }
    return out.sort((a, b) => a.created_at_ms - b.created_at_ms);
  }

  async agents(grant: string): Promise<AgentRecord[]> {
    const out: AgentRecord[] = [];
    for await (const key of await this.kv.keys(grantKeys.agentsOf(grant))) {
      const entry = await this.kv.get(key);
      if (live(entry)) out.push(entry.json<AgentRecord>());
    }
    return out.sort((a, b) => a.agent.localeCompare(b.agent));
  }

  /** Enrols or re-enrols (new keys) one agent; the grant's other agents are untouched. */
  async putAgent(record: AgentRecord): Promise<void> {
    await this.kv.put(grantKeys.agent(record.grant, record.agent), JSON.stringify(record));
  }

  async deleteGrant(id: string): Promise<void> {
    for (const agent of await this.agents(id)) await this.kv.delete(grantKeys.agent(id, agent.agent));
    await this.kv.delete(grantKeys.lease(id));
    await this.kv.delete(grantKeys.grant(id));
  }

  async createJoinToken(hash: string, record: JoinTokenRecord): Promise<void> {
    await this.kv.create(grantKeys.join(hash), JSON.stringify(record));
  }

  /**
   * Consumes a join token exactly once across replicas: read, check, then mark it used by
   * compare-and-set on the revision read; a replica that loses the race sees `already used`.
   */
  async consumeJoinToken(hash: string, nowMs: number): Promise<JoinTokenRecord> {
    const entry = await this.kv.get(grantKeys.join(hash));
    const record = checkJoinToken(live(entry) ? entry.json<JoinTokenRecord>() : undefined, nowMs);
    try {
      await this.kv.update(
        grantKeys.join(hash),
        JSON.stringify({ ...record, used_at_ms: nowMs }),
        (entry as KvEntry).revision,
      );
    } catch {
      throw new AppError('unauthenticated', 'join token: already used');
    }
    return record;
  }

  async lease(grant: string): Promise<{ record: LeaseRecord; revision: number } | undefined> {
    const entry = await this.kv.get(grantKeys.lease(grant));
    return live(entry) ? { record: entry.json<LeaseRecord>(), revision: entry.revision } : undefined;
  }

  /**
   * Writes a lease if it is still at `revision` (undefined: absent); returns the new revision, or
   * undefined when another replica changed it first.
   */
  async casLease(
    grant: string,
    record: LeaseRecord,
    revision: number | undefined,
  ): Promise<number | undefined> {
    try {
      return revision === undefined
        ? await this.kv.create(grantKeys.lease(grant), JSON.stringify(record))
        : await this.kv.update(grantKeys.lease(grant), JSON.stringify(record), revision);
    } catch {
      return undefined;
    }
  }

  /** Makes a grant due at once, whoever holds its lease (RotateNow, a new enrolment). */
  async markDue(grant: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.lease(grant);
      const next = current
        ? { ...current.record, next_due_ms: 0 }
        : { holder: '', until_ms: 0, next_due_ms: 0 };
      if ((await this.casLease(grant, next, current?.revision)) !== undefined) return;
    }
    throw new AppError('unavailable', 'could not mark the grant due; retry');
  }
}
