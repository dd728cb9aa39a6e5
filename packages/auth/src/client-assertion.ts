import { AppError, type Clock, joseReason, type ReplayGuard } from '@aoa/core';
import type { ClientConfig, Policy } from '@aoa/policy';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';

// 'Ed25519' is the fully-specified name (RFC 9864) that current clients such as oauth4webapi send.
export const CLIENT_ASSERTION_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'PS256', 'RS256'];
const MAX_ASSERTION_BYTES = 8192;

export interface AssertionContext {
  policy: Policy;
  /** The issuer identifier: the assertion's `aud` must be exactly this (rfc7523bis). */
  issuer: string;
  windowSeconds: number;
  clock: Clock;
  replay: Pick<ReplayGuard, 'claim'>;
}

/**
 * Authenticates a registered client by its RFC 7523 `private_key_jwt` assertion: `iss = sub =
 * client_id`, `aud` exactly the issuer, signed by a key registered in policy, `exp` in the future, a
 * life no longer than the replay window, and a `jti` never seen before on any replica.
 */
export async function authenticateClient(assertion: string, ctx: AssertionContext): Promise<ClientConfig> {
  const fail = (reason: string): never => {
    throw new AppError('unauthenticated', `client assertion: ${reason}`);
  };
  if (assertion.length > MAX_ASSERTION_BYTES || assertion.split('.').length !== 3) fail('malformed');
  let unverified: ReturnType<typeof decodeJwt>;
  let kid: string | undefined;
  try {
    unverified = decodeJwt(assertion);
    kid = decodeProtectedHeader(assertion).kid;
  } catch {
    return fail('malformed');
  }
  const clientId = unverified.iss;
  if (typeof clientId !== 'string' || clientId !== unverified.sub)
    fail('iss and sub must both be the client id');
  const client = ctx.policy.clients.find((c) => c.id === clientId);
  if (!client) return fail('unknown client');
  const candidates = client.keys.filter((k) => kid === undefined || k.kid === undefined || k.kid === kid);
  if (candidates.length === 0) fail('no registered key matches its kid');
  let payload: Record<string, unknown> | undefined;
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      ({ payload } = await jwtVerify(assertion, candidate.key, {
        algorithms: candidate.alg ? [candidate.alg] : CLIENT_ASSERTION_ALGORITHMS,
        issuer: client.id,
        subject: client.id,
        requiredClaims: ['exp', 'jti', 'aud'],
        currentDate: new Date(ctx.clock.nowMs()),
        clockTolerance: 5,
      }));
      break;
    } catch (error) {
      lastError = error;
    }
  }
  if (!payload) return fail(lastError instanceof errors.JOSEError ? joseReason(lastError) : 'invalid');
  const aud = payload.aud;
  if (!(aud === ctx.issuer || (Array.isArray(aud) && aud.length === 1 && aud[0] === ctx.issuer))) {
    fail('aud must be exactly the issuer identifier');
  }
  const now = ctx.clock.nowMs() / 1000;
  const exp = payload.exp as number;
  const start = typeof payload.iat === 'number' ? Math.min(payload.iat, now) : now;
  if (exp - start > ctx.windowSeconds)
    fail(`claims a life longer than the replay window (${ctx.windowSeconds}s)`);
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return fail('jti missing');
  await ctx.replay.claim('ca', client.id, jti);
  return client;
}
