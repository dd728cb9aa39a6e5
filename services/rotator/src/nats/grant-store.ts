import {
  type AgentRecord,
  AppError,
  type GrantMirror,
  type GrantRecord,
  grantKeys,
  isWrongLastSequence,
} from '@aoa/core';
import type { KV, KvEntry } from '@nats-io/kv';
import { checkJoinToken, type JoinTokenRecord } from '../domain/join-token.js';
import type { LeaseRecord } from '../domain/schedule.js';

const live = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';

/**
 * KV `aoa_grants`, shared by every rotator replica: grants, agent enrolments, join-token hashes and
 * rotation leases. Every change that two replicas could race on is a compare-and-set on the revision.
 * Listings come from the local watch-fed mirror, never from a key listing on the server; a write
 * returns once the mirror holds it, so this replica reads its own writes.
 */
export class GrantStore {
  constructor(
    private readonly kv: KV,
    private readonly mirror: GrantMirror,
  ) {}

  async grant(id: string): Promise<{ record: GrantRecord; revision: number } | undefined> {
    const entry = await this.kv.get(grantKeys.grant(id));
    return live(entry) ? { record: entry.json<GrantRecord>(), revision: entry.revision } : undefined;
  }

  /** Creates a grant only if its key is absent (compare-and-set); false when it already exists. */
  async createGrant(record: GrantRecord): Promise<boolean> {
    let revision: number;
    try {
      revision = await this.kv.create(grantKeys.grant(record.id), JSON.stringify(record));
    } catch (error) {
      if ((await this.grant(record.id)) !== undefined) return false;
      throw error;
    }
    await this.mirror.waitFor(revision);
    return true;
  }

  /** Compare-and-set; a concurrent change is `failed_precondition` (the caller may retry). */
  async updateGrant(record: GrantRecord, revision: number): Promise<void> {
    let written: number;
    try {
      written = await this.kv.update(grantKeys.grant(record.id), JSON.stringify(record), revision);
    } catch {
      throw new AppError('failed_precondition', 'grant changed concurrently; retry');
    }
    await this.mirror.waitFor(written);
  }

  /** The `aoa_grants` revision the local mirror holds: mint requests ask the issuer to catch up to it. */
  revision(): number {
    return this.mirror.lastRevision();
  }

  /** Every grant, oldest first, from the local mirror. */
  listGrants(): GrantRecord[] {
    return this.mirror.grants();
  }

  /** A grant's enrolled agents, from the local mirror. */
  agents(grant: string): AgentRecord[] {
    return this.mirror.agents(grant);
  }

  /** Enrols or re-enrols (new keys) one agent; the grant's other agents are untouched. */
  async putAgent(record: AgentRecord): Promise<void> {
    await this.mirror.waitFor(
      await this.kv.put(grantKeys.agent(record.grant, record.agent), JSON.stringify(record)),
    );
  }

  /** Removes one agent's enrolment; the grant's other agents are untouched. */
  async deleteAgent(grant: string, agent: string): Promise<void> {
    await this.kv.delete(grantKeys.agent(grant, agent));
    await this.mirror.catchUp();
  }

  async deleteGrant(id: string): Promise<void> {
    for (const agent of this.agents(id)) await this.kv.delete(grantKeys.agent(id, agent.agent));
    await this.kv.delete(grantKeys.lease(id));
    await this.kv.delete(grantKeys.grant(id));
    await this.mirror.catchUp();
  }

  async createJoinToken(hash: string, record: JoinTokenRecord): Promise<void> {
    await this.kv.create(grantKeys.join(hash), JSON.stringify(record));
  }

  /**
   * Records that a service-account token enrolled an agent, once across replicas (create is a
   * compare-and-set on "no previous value"): the same token presented again, by anyone, is refused.
   */
  async claimAttestation(
    hash: string,
    record: { grant: string; agent: string; pod_uid: string; used_at_ms: number },
  ): Promise<void> {
    try {
      await this.kv.create(grantKeys.attest(hash), JSON.stringify(record));
    } catch (error) {
      if (!isWrongLastSequence(error)) {
        throw new AppError('unavailable', 'grant store unavailable', { cause: error });
      }
      throw new AppError(
        'unauthenticated',
        'attestation: this service-account token already enrolled an agent (each token enrols once)',
        { reason: 'ATTESTATION_REPLAYED' },
      );
    }
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

  /**
   * A grant's lease from the local mirror: no KV read per grant per scan. A decision made on a view a
   * moment behind only loses its compare-and-set.
   */
  lease(grant: string): { record: LeaseRecord; revision: number } | undefined {
    const held = this.mirror.lease(grant);
    return held ? { record: held.value as LeaseRecord, revision: held.revision } : undefined;
  }

  /** A grant's lease read from KV itself, for a write that must not retry on a stale view. */
  private async freshLease(grant: string): Promise<{ record: LeaseRecord; revision: number } | undefined> {
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

  /**
   * Makes a grant due at once, whoever holds its lease (RotateNow, a new enrolment); with `avoidKid`
   * (an emergency re-mint), its next mint must not be signed with that key.
   */
  async markDue(grant: string, avoidKid?: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.freshLease(grant);
      const next = {
        ...(current?.record ?? { holder: '', until_ms: 0 }),
        next_due_ms: 0,
        ...(avoidKid === undefined ? {} : { avoid_kid: avoidKid }),
      };
      if ((await this.casLease(grant, next, current?.revision)) !== undefined) return;
    }
    throw new AppError('unavailable', 'could not mark the grant due; retry');
  }
}
