import {
  AppError,
  type Clock,
  type KeySetMirror,
  type ReplayGuard,
  type VerifiedAoaToken,
  verifyAoaToken,
  verifyDpopProof,
} from '@aoa/core';

/** A DPoP proof read from gRPC metadata `dpop`, and the method and URL it must name. */
export interface DpopPresentation {
  proof: string;
  htm: string;
  /** The service's gRPC base URL + `/aoa.v1.<Service>/<Method>`. */
  htu: string;
}

export interface HolderContext {
  /** The issuer identifier: the token's `iss` must be exactly this. */
  issuer: string;
  /** The published keys (a mirror of KV `aoa_keys`). */
  keys: KeySetMirror;
  clock: Clock;
  /** The replay window W: how long a proof stays acceptable after its `iat`. */
  windowSeconds: number;
  /** Claims each proof's `jti` once, across replicas (KV `aoa_replay`). */
  replay: Pick<ReplayGuard, 'claim'>;
}

/** A verified aoa token and the thumbprint of the key that proved its possession. */
export interface ProvedHolder {
  token: VerifiedAoaToken;
  jkt: string;
}

/**
 * Proves a caller by `authorization: DPoP <aoa token>` and its DPoP proof (RFC 9449): the token verifies
 * as an aoa token (signature by a published key, `iss`, `exp`, `nbf`), the proof names this method
 * and URL and the token (`ath`), its `jti` is claimed once in `aoa_replay`, and its key is the one the
 * token is bound to (`cnf.jkt`; an unbound token proves nothing). Every failure is `unauthenticated`
 * with a reason that holds no token material. Revocation and what the token allows are the caller's
 * next steps.
 *
 * @example
 * const { token, jkt } = await proveHolder(singleMetadata(md, 'authorization'), { proof, htm: 'POST', htu }, ctx);
 */
export async function proveHolder(
  authorization: string | undefined,
  dpop: DpopPresentation,
  ctx: HolderContext,
): Promise<ProvedHolder> {
  const raw = dpopToken(authorization);
  const token = await verifyAoaToken(raw, { issuer: ctx.issuer, keys: ctx.keys, clock: ctx.clock });
  const jkt = await verifyDpopProof({
    ...dpop,
    accessToken: raw,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  if (token.claims.cnf?.jkt !== jkt) {
    throw new AppError('unauthenticated', 'DPoP proof: key does not match the token binding (cnf.jkt)');
  }
  return { token, jkt };
}

function dpopToken(authorization: string | undefined): string {
  const match = /^DPoP ([A-Za-z0-9_.-]+)$/.exec(authorization ?? '');
  if (!match?.[1]) {
    throw new AppError('unauthenticated', 'a dpop proof needs authorization: DPoP <key-bound aoa token>');
  }
  return match[1];
}
