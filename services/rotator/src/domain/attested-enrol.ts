import type { VerifiedIdpToken } from '@aoa/auth';
import {
  type AgentRecord,
  AppError,
  assertName,
  ENROLL_DPOP_HTU,
  type GrantRecord,
  sha256Hex,
  verifyDpopProof,
} from '@aoa/core';
import { type Policy, type PolicyGrant, policyGrantId } from '@aoa/policy';
import { assertActive, type RotatorContext, recordEnrolment } from './operations.js';
import { parseAgentKeys } from './public-jwk.js';

export interface AttestedEnrolInput {
  attestation: string;
  dpop: string;
  /** A policy grant's name, when the pod's account is attested into several; '' for none. */
  grant: string;
  agentId: string;
  encryptionJwk: string;
  dpopJwk: string;
}

/** The pod a Kubernetes service-account token is bound to, as the audit event records it. */
interface Pod {
  idp: string;
  namespace: string;
  service_account: string;
  pod: string;
  pod_uid: string;
  node: string;
}

/**
 * Enrols an agent by its pod, the way SPIRE's k8s_psat and Vault's Kubernetes auth attest workloads:
 * the projected service-account token is verified as any kubernetes IdP token (keys through the
 * cluster's discovery, legacy tokens refused, TokenReview when the IdP has it), the DPoP proof shows
 * the caller holds the agent key being enrolled (so the token enrols that key and no other), the token's
 * namespace and service account (and `when`) select the policy grant, and the token is used once.
 */
export async function attestedEnrol(
  ctx: RotatorContext,
  input: AttestedEnrolInput,
): Promise<{ grant: GrantRecord; agent: AgentRecord }> {
  const agentId = assertName('agent_id', input.agentId);
  const keys = parseAgentKeys(input.encryptionJwk, input.dpopJwk);
  const policy = ctx.policy();
  const token = await ctx.verifySubjectToken(input.attestation, policy);
  const pod = podOf(token);
  const proved = await verifyDpopProof({
    proof: input.dpop,
    htm: 'POST',
    htu: ENROLL_DPOP_HTU,
    accessToken: input.attestation,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  if (proved !== keys.dpopJkt) {
    throw new AppError(
      'unauthenticated',
      'attestation: the DPoP proof is not by the dpop_jwk being enrolled',
    );
  }
  const chosen = attestedGrant(policy, token, pod, input.grant);
  const found = await ctx.store.grant(policyGrantId(chosen.name));
  if (!found) throw new AppError('unavailable', `grant ${chosen.name} is not reconciled yet: retry`);
  assertActive(found.record);
  await ctx.store.claimAttestation(sha256Hex(`${pod.idp}\n${String(token.claims.jti)}`), {
    grant: found.record.id,
    agent: agentId,
    pod_uid: pod.pod_uid,
    used_at_ms: ctx.clock.nowMs(),
  });
  return recordEnrolment(ctx, found.record, agentId, keys, { by: `idp:${pod.idp}:${token.sub}`, pod });
}

function podOf(token: VerifiedIdpToken): Pod {
  if (token.idp.profile !== 'kubernetes') {
    throw new AppError(
      'unauthenticated',
      `attestation: idp ${token.idp.namespace} is not of profile kubernetes; pods attest with service-account tokens`,
    );
  }
  const scope = token.claims['kubernetes.io'] as {
    namespace: string;
    serviceaccount: { name: string };
    pod?: { name?: unknown; uid?: unknown };
    node?: { name?: unknown };
  };
  const pod = scope.pod;
  if (typeof pod?.name !== 'string' || typeof pod.uid !== 'string' || typeof token.claims.jti !== 'string') {
    throw new AppError(
      'unauthenticated',
      'attestation: the token is not bound to a pod (a projected volume token of the agent’s pod is needed)',
    );
  }
  return {
    idp: token.idp.namespace,
    namespace: scope.namespace,
    service_account: scope.serviceaccount.name,
    pod: pod.name,
    pod_uid: pod.uid,
    node: typeof scope.node?.name === 'string' ? scope.node.name : '',
  };
}

/** The one policy grant this pod's account is attested into (by name when several are). */
function attestedGrant(policy: Policy, token: VerifiedIdpToken, pod: Pod, name: string): PolicyGrant {
  const input = { claims: token.claims, request: { child: '', env: '', scopes: [], audience: [] } };
  const account = `${pod.namespace}/${pod.service_account}`;
  const matching = policy.grants.filter(
    (g) =>
      g.attest?.idp === pod.idp &&
      g.attest.namespace === pod.namespace &&
      g.attest.serviceAccount === pod.service_account &&
      (name === '' || g.name === name),
  );
  const held = matching.filter((g) => g.attest?.when === undefined || g.attest.when.evaluate(input).holds);
  if (held.length === 0) {
    throw new AppError(
      'permission_denied',
      matching.length > 0
        ? `attestation: ${account} fails the attest.when of grant ${matching.map((g) => g.name).join(', ')}`
        : `attestation: no policy grant${name ? ` named ${name}` : ''} attests service account ${account} of idp ${pod.idp}`,
      { reason: matching.length > 0 ? 'CONDITION_FAILED' : 'NO_ATTESTED_GRANT' },
    );
  }
  if (held.length > 1) {
    throw new AppError(
      'failed_precondition',
      `attestation: ${account} is attested into grants ${held.map((g) => g.name).join(', ')}: name one (grant)`,
    );
  }
  return held[0] as PolicyGrant;
}
