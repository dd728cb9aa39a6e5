import { federatedClient } from '@aoa/auth';
import { AppError, verifyDpopProof } from '@aoa/core';
import type { Policy } from '@aoa/policy';
import { decideAndSign } from './decide-and-sign.js';
import type { DelegateResult, Facts, IssuerContext } from './delegate.js';
import type { DelegateInput } from './request.js';

/**
 * Delegate for a federated client (no stored key): a CI job or a pod presents its workload token as
 * both the client assertion and the subject token, with a DPoP proof of a fresh key (as at an OAuth
 * token endpoint: no `ath`). The token authenticates the client whose `when` accepts it, is claimed once (its `jti`) and
 * must be recent (`max_age`); the minted token is bound to the proof's key, so a workload token
 * replayed elsewhere mints nothing, and a token minted from it is useless without that key.
 */
export async function federatedDelegate(
  ctx: IssuerContext,
  input: DelegateInput,
  proof: {
    assertion: string;
    dpop: { proof: string; htm: string; htu: string };
    clientId: string | undefined;
  },
  facts: Facts,
  policy: Policy,
): Promise<DelegateResult> {
  if (input.subjectToken !== proof.assertion) {
    throw new AppError(
      'invalid_argument',
      'subject_token: a federated client presents its own workload token, the one it authenticates with',
    );
  }
  const subject = await ctx.subjects.verify(input.subjectToken, input.subjectTokenType, policy);
  if (subject.kind !== 'idp') throw new AppError('unauthenticated', 'client assertion: not a workload token');
  facts.sub = `idp:${subject.idp.namespace}:${subject.sub}`;
  const { client, jti } = federatedClient(policy, subject, {
    clientId: proof.clientId,
    nowMs: ctx.clock.nowMs(),
    request: { child: input.child, env: input.environment, scopes: input.scopes, audience: input.audience },
  });
  facts.clientId = `client:${client.id}`;
  const jkt = await verifyDpopProof({
    ...proof.dpop,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  if (input.holderJkt !== undefined && input.holderJkt !== jkt) {
    throw new AppError(
      'invalid_argument',
      "holder_jkt: a federated client's token is bound to its DPoP proof key",
    );
  }
  await ctx.replay.claim('ca', client.id, jti);
  const origin = { kind: 'root' as const, idp: subject.idp.namespace, sub: subject.sub, clientId: client.id };
  return decideAndSign(ctx, { ...input, holderJkt: jkt }, subject, origin, facts, policy);
}
