import type { Logger } from '@aoa/core';
import { type GrantRegistry, type RevocationWriteContext, writeRevocation } from '@aoa/revocation';
import { authorizeRevoke, type Caller, callerName } from './authority.js';
import { type CallerProof, type ProofContext, proveCaller } from './caller.js';
import { type RawRevokeRequest, validateRevokeRequest } from './target.js';

export type { RevocationNotice, RevocationStore } from '@aoa/revocation';

export interface RevokerContext extends ProofContext, RevocationWriteContext {
  grants: GrantRegistry;
  log: Logger;
}

export interface RevokeResult {
  revocationId: string;
  atMs: number;
  key: string;
  repeated: boolean;
  caller: Caller;
}

/**
 * The one Revoke path: validate, prove the caller, check its authority, then write the KV entry first,
 * push the notice, and queue the audit event in the outbox; a revoked grant also becomes a durable
 * tombstone in `aoa_grants`. Idempotent: revoking an absolute target
 * twice answers the revocation already in force; an unknown jti is simply revoked.
 */
export async function revoke(
  ctx: RevokerContext,
  raw: RawRevokeRequest,
  proof: CallerProof,
): Promise<RevokeResult> {
  const { target, reason } = validateRevokeRequest(raw);
  const { caller, presented } = await proveCaller(ctx, proof);
  const grantParent = target.kind === 'grant' ? await ctx.grants.parentClient(target.grant) : undefined;
  const place = authorizeRevoke(caller, target, presented, grantParent);
  const written = await writeRevocation(ctx, { target, reason, by: callerName(caller), place });
  if (target.kind === 'grant') {
    // The entry above already stops every mint; the tombstone outlives it. Never fails the revocation.
    await ctx.grants.tombstone(target.grant, reason || 'grant revoked').catch((error: unknown) => {
      ctx.log.warn({ grant: target.grant, err: (error as Error).message }, 'grant tombstone not written');
    });
  }
  return { ...written, caller };
}
