import { proveClient } from '@aoa/auth';
import { type AoaClaims, AppError, verifyDpopProof } from '@aoa/core';
import { assertNotRevoked, type CallerProof, certifiedClient, type IssuerContext } from './delegate.js';

export type Introspection = { active: false } | { active: true; claims: AoaClaims };

const INACTIVE: Introspection = { active: false };

/**
 * RFC 7662 semantics over any adapter: the caller proves itself first (an unproved caller is an error);
 * then a token that is invalid, expired, revoked, not aoa's, or not the caller's is simply inactive.
 * The caller owns a token when it is an admin client, the token's requester (`client_id`), or its
 * holder (a DPoP proof by the key in `cnf.jkt`).
 */
export async function introspect(
  ctx: IssuerContext,
  token: string,
  proof: CallerProof,
): Promise<Introspection> {
  if (!token) throw new AppError('invalid_argument', 'token: required');
  const policy = ctx.policy();
  let owner: (claims: AoaClaims) => boolean;
  const proved = proof.authenticatedClient ?? certifiedClient(policy, proof);
  if (proved || proof.clientAssertion) {
    const client = proved ?? (await proveClient(proof.clientAssertion, ctx));
    owner = (claims) => client.admin || claims.client_id === `client:${client.id}`;
  } else if (proof.dpop) {
    const jkt = await verifyDpopProof({
      ...proof.dpop,
      accessToken: token,
      windowSeconds: ctx.windowSeconds,
      clock: ctx.clock,
      replay: ctx.replay,
    });
    owner = (claims) => claims.cnf?.jkt === jkt;
  } else {
    throw new AppError(
      'unauthenticated',
      'caller proof required (send client-assertion or dpop, or connect with a registered client certificate)',
    );
  }
  let verified: Awaited<ReturnType<IssuerContext['subjects']['verify']>>;
  try {
    verified = await ctx.subjects.verify(token, '', policy);
  } catch (error) {
    if (error instanceof AppError && error.code === 'unavailable') throw error;
    return INACTIVE;
  }
  if (verified.kind !== 'aoa' || !owner(verified.claims)) return INACTIVE;
  try {
    assertNotRevoked(ctx.revocations, verified.claims, verified.kid);
  } catch (error) {
    if (error instanceof AppError && error.code === 'unavailable') throw error;
    return INACTIVE;
  }
  return { active: true, claims: verified.claims };
}
