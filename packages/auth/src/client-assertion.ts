import { AppError, type Clock, JwsError, type ReplayGuard, verifyCompactJws } from '@aoa/core';
import { type ClientConfig, findClientByCertificate, type Policy } from '@aoa/policy';

// 'Ed25519' is the fully-specified name (RFC 9864) that current clients such as oauth4webapi send.
export const CLIENT_ASSERTION_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'PS256', 'RS256'];
const MAX_ASSERTION_BYTES = 8192;
const CLOCK_TOLERANCE_SECONDS = 5;

/** A key registered with `alg: EdDSA` also verifies assertions that name it by its RFC 9864 name. */
const acceptedNames = (alg: string): string[] =>
  alg === 'EdDSA' || alg === 'Ed25519' ? ['EdDSA', 'Ed25519'] : [alg];

export interface AssertionContext {
  policy: Policy;
  /** The issuer identifier: the assertion's `aud` must be exactly this (rfc7523bis). */
  issuer: string;
  windowSeconds: number;
  clock: Clock;
  replay: Pick<ReplayGuard, 'claim'>;
}

/** {@link AssertionContext} with the policy as it is at each call (it reloads). */
export interface CallerContext extends Omit<AssertionContext, 'policy'> {
  policy(): Policy;
}

/**
 * Proves the caller of one call by the `client-assertion` it sent ({@link authenticateClient});
 * none sent is `unauthenticated`.
 *
 * @example
 * const client = requireAdmin(await proveClient(singleMetadata(metadata, 'client-assertion'), ctx));
 */
export async function proveClient(assertion: string | undefined, ctx: CallerContext): Promise<ClientConfig> {
  if (!assertion) throw new AppError('unauthenticated', 'caller proof required (send client-assertion)');
  const { issuer, windowSeconds, clock, replay } = ctx;
  return authenticateClient(assertion, { policy: ctx.policy(), issuer, windowSeconds, clock, replay });
}

/**
 * The client a verified TLS client certificate authenticates (RFC 8705 `tls_client_auth`): the one
 * registered with one of its URI SANs (`tls_client_auth_san_uri`), else `unauthenticated`. A
 * `clientId` the caller sent beside it must name that client.
 *
 * @example
 * const client = proveCertifiedClient(ctx.policy(), clientCertificateUris(call));
 */
export function proveCertifiedClient(
  policy: Policy,
  certificateUris: readonly string[],
  clientId?: string,
): ClientConfig {
  const client = findClientByCertificate(policy, certificateUris);
  if (!client) {
    throw new AppError(
      'unauthenticated',
      'the TLS client certificate authenticates no registered client (tls_client_auth_san_uri)',
    );
  }
  if (clientId !== undefined && clientId !== client.id) {
    throw new AppError('unauthenticated', 'client-id names another client than the TLS client certificate');
  }
  return client;
}

/** Lets an administrator client through, and refuses any other as `permission_denied`. */
export function requireAdmin(client: ClientConfig, what = 'administrators only'): ClientConfig {
  if (!client.admin) throw new AppError('permission_denied', what);
  return client;
}

/**
 * Authenticates a registered client by its RFC 7523 `private_key_jwt` assertion: `iss = sub =
 * client_id`, `aud` exactly the issuer, signed by a key registered in policy, `exp` in the future, a
 * life no longer than the replay window, and a `jti` never seen before on any replica.
 */
export async function authenticateClient(assertion: string, ctx: AssertionContext): Promise<ClientConfig> {
  const { client, jti } = verifyClientAssertion(assertion, ctx);
  await ctx.replay.claim('ca', client.id, jti);
  return client;
}

/**
 * Everything {@link authenticateClient} checks except single use: the caller must still claim the
 * returned `jti` (`replay.claim('ca', client.id, jti)`) before acting on the assertion. Lets a hot
 * path overlap that network round trip with its own work.
 */
export function verifyClientAssertion(
  assertion: string,
  ctx: Omit<AssertionContext, 'replay'>,
): { client: ClientConfig; jti: string } {
  const fail = (reason: string): never => {
    throw new AppError('unauthenticated', `client assertion: ${reason}`);
  };
  if (assertion.length > MAX_ASSERTION_BYTES) fail('malformed');
  let unverified: Record<string, unknown>;
  let kid: unknown;
  try {
    const [headerSegment, payloadSegment] = assertion.split('.');
    kid = JSON.parse(Buffer.from(headerSegment ?? '', 'base64url').toString()).kid;
    unverified = JSON.parse(Buffer.from(payloadSegment ?? '', 'base64url').toString());
  } catch {
    return fail('malformed');
  }
  const clientId = unverified?.iss;
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
      ({ payload } = verifyCompactJws(
        assertion,
        candidate.key,
        candidate.alg ? acceptedNames(candidate.alg) : CLIENT_ASSERTION_ALGORITHMS,
      ));
      break;
    } catch (error) {
      lastError = error;
    }
  }
  if (!payload) return fail(lastError instanceof JwsError ? lastError.reason : 'invalid');
  if (payload.iss !== client.id || payload.sub !== client.id) fail('iss and sub must both be the client id');
  const now = ctx.clock.nowMs() / 1000;
  if (typeof payload.exp !== 'number') return fail('claim check failed (exp)');
  if (payload.exp <= now - CLOCK_TOLERANCE_SECONDS) fail('expired');
  if (typeof payload.nbf === 'number' && payload.nbf > now + CLOCK_TOLERANCE_SECONDS)
    fail('claim check failed (nbf)');
  if (payload.iat !== undefined && typeof payload.iat !== 'number') fail('claim check failed (iat)');
  const aud = payload.aud;
  if (!(aud === ctx.issuer || (Array.isArray(aud) && aud.length === 1 && aud[0] === ctx.issuer))) {
    fail('aud must be exactly the issuer identifier');
  }
  const exp = payload.exp as number;
  const start = typeof payload.iat === 'number' ? Math.min(payload.iat, now) : now;
  if (exp - start > ctx.windowSeconds)
    fail(`claims a life longer than the replay window (${ctx.windowSeconds}s)`);
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return fail('jti missing');
  return { client, jti };
}
