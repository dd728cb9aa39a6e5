import {
  assertOperator,
  proveCertifiedClient,
  proveClient,
  proveHolder,
  type CallerProof as ServiceCallerProof,
} from '@aoa/auth';
import {
  AppError,
  type Clock,
  type KeySetMirror,
  operatorRights,
  type ReplayGuard,
  type RevocationMirror,
  type VerifiedAoaToken,
  verifyAoaToken,
} from '@aoa/core';
import type { Policy } from '@aoa/policy';
import type { Caller } from './authority.js';

/** The caller's proof as read by an adapter (`@aoa/auth` `callerProof`), and the tokens it presented. */
export interface CallerProof extends ServiceCallerProof {
  /** Tokens presented in `aoa-token` metadata, to show a target's lineage. */
  tokens: string[];
}

export interface ProofContext {
  issuer: string;
  policy(): Policy;
  keys: KeySetMirror;
  /** Consulted for operator tokens (other holders prove only what they own, as before). */
  revocations: Pick<RevocationMirror, 'ready' | 'check'>;
  replay: Pick<ReplayGuard, 'claim'>;
  clock: Clock;
  windowSeconds: number;
}

const MAX_PRESENTED = 4;

/**
 * Proves the caller exactly as the issuer does: a client assertion (RFC 7523) of a registered client;
 * or a DPoP proof (RFC 9449, with `ath`) by the key the `authorization: DPoP` aoa token is bound to
 * (`@aoa/auth` `proveHolder`), whose holder is an operator when that token is an operator token
 * (`assertOperator`: an administrator, or the owner of the clients it names; refused if revoked);
 * or, when the call sends neither, a client certificate (RFC 8705) registered for a client. Returns the caller and every verified token it presented (the authorization token first).
 *
 * @example
 * const { caller, presented } = await proveCaller(ctx, proof);
 */
export async function proveCaller(
  ctx: ProofContext,
  proof: CallerProof,
): Promise<{ caller: Caller; presented: VerifiedAoaToken[] }> {
  if (proof.tokens.length > MAX_PRESENTED) {
    throw new AppError('invalid_argument', `aoa-token: at most ${MAX_PRESENTED} tokens`);
  }
  if (proof.clientAssertion && proof.dpop) {
    throw new AppError('invalid_argument', 'send one caller proof: client-assertion or dpop, not both');
  }
  const check = { issuer: ctx.issuer, keys: ctx.keys, clock: ctx.clock };
  const client = proof.clientAssertion
    ? await proveClient(proof.clientAssertion, ctx)
    : !proof.dpop && proof.certificateUris.length > 0
      ? proveCertifiedClient(ctx.policy(), proof.certificateUris)
      : undefined;
  if (client) {
    const presented = await verifyAll(proof.tokens, check);
    return { caller: { kind: 'client', id: client.id, admin: client.admin }, presented };
  }
  if (proof.dpop) {
    const holder = await proveHolder(proof.authorization, proof.dpop, ctx);
    // An operator token makes its holder an administrator or an owner, once shown not to be revoked.
    const caller: Caller = operatorRights(holder.token.claims)
      ? assertOperator(holder, ctx.revocations)
      : { kind: 'holder', jkt: holder.jkt };
    const presented = await verifyAll(proof.tokens, check);
    return { caller, presented: [holder.token, ...presented] };
  }
  throw new AppError(
    'unauthenticated',
    'caller proof required (send client-assertion, or dpop with authorization, or a TLS client certificate)',
  );
}

async function verifyAll(
  tokens: string[],
  check: Parameters<typeof verifyAoaToken>[1],
): Promise<VerifiedAoaToken[]> {
  const out: VerifiedAoaToken[] = [];
  for (const token of tokens) {
    try {
      out.push(await verifyAoaToken(token, check));
    } catch (error) {
      const reason = error instanceof AppError ? error.message.replace(/^access token: /, '') : 'invalid';
      throw new AppError('unauthenticated', `aoa-token: ${reason}`);
    }
  }
  return out;
}
