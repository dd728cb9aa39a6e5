import {
  type AgentRecord,
  AppError,
  type AuditEventType,
  type AuditPublisher,
  type Clock,
  type GrantRecord,
  type Logger,
  toAppError,
} from '@aoa/core';
import { type Policy, type PolicyGrant, policyGrantId } from '@aoa/policy';
import { grantDiffers, planAgents, policyGrantRecord, reconcileEventId } from '../domain/policy-grants.js';
import { parseAgentKeys } from '../domain/public-jwk.js';
import type { RotatorMetrics } from '../metrics.js';
import type { GrantStore } from './grant-store.js';

export interface PolicyReconcilerDeps {
  store: GrantStore;
  audit: Pick<AuditPublisher, 'envelope' | 'publishEnvelope'>;
  clock: Clock;
  log: Logger;
  metrics: RotatorMetrics;
  /** Makes a grant due at once (its policy agents changed). */
  rotateNow(grantId: string): Promise<void>;
  /** Delay before a failed reconcile is tried again. */
  retryMs: number;
}

/** Compare-and-set attempts per grant before a reconcile gives up until its retry. */
const CAS_ATTEMPTS = 5;

/**
 * Brings `aoa_grants` in line with the policy's `grants:` (the policy is their authority): creates
 * what is missing, updates what changed, deletes what the policy no longer lists, and enrols or removes
 * the agents it registers. A revoked grant stays revoked (and is kept, even once unlisted, so listing
 * it again never resurrects it). Runs at start and after every policy load, one run at a time, always
 * for the latest policy; a failed run is retried. Every change is audited before it is written, with
 * an event id every replica derives alike, so racing replicas leave one grant and one event.
 */
export class PolicyReconciler {
  private latest: Policy | undefined;
  private running: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: PolicyReconcilerDeps) {}

  /** Reconciles for `policy` (now, or after the run in progress); resolves when that run is done. */
  reconcile(policy: Policy): Promise<void> {
    this.latest = policy;
    clearTimeout(this.retry);
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.running;
  }

  private async drain(): Promise<void> {
    for (let policy = this.latest; policy && !this.stopped; policy = this.latest) {
      this.latest = undefined;
      // A newer policy supersedes the retry of an older one that failed.
      clearTimeout(this.retry);
      try {
        await this.run(policy);
        this.deps.metrics.reconciles.inc({ result: 'ok' });
      } catch (error) {
        this.deps.metrics.reconciles.inc({ result: 'failed' });
        this.deps.log.warn(
          { err: toAppError(error).message, hash: policy.hash, retryMs: this.deps.retryMs },
          'policy grants not reconciled; retrying',
        );
        const failed = policy;
        this.retry = setTimeout(() => {
          if (!this.stopped) void this.reconcile(failed);
        }, this.deps.retryMs);
      }
    }
  }

  private async run(policy: Policy): Promise<void> {
    const listed = new Set(policy.grants.map((grant) => policyGrantId(grant.name)));
    for (const grant of policy.grants) await this.syncGrant(policy, grant);
    for (const record of this.deps.store.listGrants()) {
      if (record.policy_grant !== undefined && !listed.has(record.id)) await this.removeGrant(policy, record);
    }
  }

  private async syncGrant(policy: Policy, grant: PolicyGrant): Promise<void> {
    const { store, clock } = this.deps;
    const id = policyGrantId(grant.name);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await store.grant(id);
      const desired = policyGrantRecord(policy, grant, current?.record, clock.nowMs());
      if (!current) {
        await this.audit('grant.created', policy, desired.id, { ...desired, by: 'policy' });
        if (!(await store.createGrant(desired))) continue;
      } else if (grantDiffers(current.record, desired)) {
        await this.audit('grant.updated', policy, desired.id, { ...desired, by: 'policy' });
        try {
          await store.updateGrant(desired, current.revision);
        } catch (error) {
          if (toAppError(error).code === 'failed_precondition') continue;
          throw error;
        }
      }
      await this.syncAgents(policy, grant, desired);
      return;
    }
    throw new AppError('unavailable', `policy grant ${grant.name} kept changing concurrently`);
  }

  private async syncAgents(policy: Policy, grant: PolicyGrant, record: GrantRecord): Promise<void> {
    const { store, clock } = this.deps;
    // A revoked grant enrols no one (as Enroll refuses it); its agents wait for a restore.
    if (record.state !== 'active') return;
    const plan = planAgents(grant.agents, store.agents(record.id));
    for (const agent of plan.enrol) {
      const keys = parseAgentKeys(JSON.stringify(agent.encryptionJwk), JSON.stringify(agent.dpopJwk));
      const enrolled: AgentRecord = {
        grant: record.id,
        agent: agent.id,
        enc_jwk: { ...keys.encryption },
        dpop_jwk: { ...keys.dpop },
        dpop_jkt: keys.dpopJkt,
        enrolled_at_ms: clock.nowMs(),
        from_policy: true,
      };
      await this.audit('agent.enrolled', policy, record.id, {
        grant_id: record.id,
        agent: agent.id,
        dpop_jkt: keys.dpopJkt,
        by: 'policy',
      });
      await store.putAgent(enrolled);
    }
    for (const agent of plan.remove) {
      await this.audit('agent.removed', policy, record.id, { grant_id: record.id, agent, by: 'policy' });
      await store.deleteAgent(record.id, agent);
    }
    if (plan.enrol.length > 0) await this.deps.rotateNow(record.id);
  }

  private async removeGrant(policy: Policy, record: GrantRecord): Promise<void> {
    if (record.state !== 'active') {
      this.deps.log.debug({ grant: record.id }, 'revoked policy grant unlisted; its tombstone stays');
      return;
    }
    await this.audit('grant.deleted', policy, record.id, {
      grant_id: record.id,
      policy_grant: record.policy_grant,
      by: 'policy',
    });
    await this.deps.store.deleteGrant(record.id);
    this.deps.log.info({ grant: record.id, policyGrant: record.policy_grant }, 'policy grant deleted');
  }

  private async audit(
    type: AuditEventType,
    policy: Policy,
    grantId: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    const event = this.deps.audit.envelope(type, grantId, { ...data, policy_hash: policy.hash });
    const agent = typeof data.agent === 'string' ? data.agent : '';
    await this.deps.audit.publishEnvelope({
      ...event,
      id: reconcileEventId(type, grantId, agent, policy.hash),
    });
  }
}
