import { proveClient } from '@aoa/auth';
import {
  AppError,
  type Clock,
  type KeySetMirror,
  type ReplayGuard,
  type VerifiedAoaToken,
  verifyAoaToken,
  verifyDpopProof,
} from '@aoa/core';
import type { Policy } from '@aoa/policy';
import type { Caller } from './authority.js';

/** The caller's proof as read from metadata by an adapter. */
export interface CallerProof {
  clientAssertion: string | undefined;
  /** A DPoP proof for `htm htu`, sent with `authorization: DPoP <token>`. */
  dpop: { proof: string; htm: string; htu: string } | undefined;
  /** The raw `authorization` value, if any. */
  authorization: string | undefined;
  /** Tokens presented in `aoa-token` metadata, to show a target's lineage. */
  tokens: string[];
}

export interface ProofContext {
  issuer: string;
  policy(): Policy;
  keys: KeySetMirror;
  replay: Pick<ReplayGuard, 'claim'>;
  clock: Clock;
  windowSeconds: number;
}

const MAX_PRESENTED = 4;

/**
 * Proves the caller exactly as the issuer does: a client assertion (RFC 7523) of a registered client,
 * or a DPoP proof (RFC 9449, with `ath`) by the key the `authorization: DPoP` aoa token is bound to.
 * Returns the caller and every verified token it presented (the authorization token first).
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
  if (proof.clientAssertion) {
    const client = await proveClient(proof.clientAssertion, ctx);
    const presented = await verifyAll(proof.tokens, check);
    return { caller: { kind: 'client', id: client.id, admin: client.admin }, presented };
  }
  if (proof.dpop) {
    const token = dpopToken(proof.authorization);
    const holderToken = await verifyAoaToken(token, check);
    const jkt = await verifyDpopProof({
      ...proof.dpop,
      accessToken: token,
      windowSeconds: ctx.windowSeconds,
      clock: ctx.clock,
      replay: ctx.replay,
    });
    if (holderToken.claims.cnf?.jkt !== jkt) {
      throw new AppError('unauthenticated', 'DPoP proof: key does not match the token binding (cnf.jkt)');
    }
    const presented = await verifyAll(proof.tokens, check);
    return { caller: { kind: 'holder', jkt }, presented: [holderToken, ...presented] };
  }
  throw new AppError(
    'unauthenticated',
    'caller proof required (send client-assertion, or dpop with authorization)',
  );
}

function dpopToken(authorization: string | undefined): string {
  const match = /^DPoP ([A-Za-z0-9_.-]+)$/.exec(authorization ?? '');
  if (!match?.[1]) {
    throw new AppError('unauthenticated', 'a dpop proof needs authorization: DPoP <key-bound aoa token>');
  }
  return match[1];
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
