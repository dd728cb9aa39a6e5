import {
  AppError,
  DPOP_ALGORITHMS,
  EmbeddedJwkError,
  embeddedKey,
  isName,
  joseReason,
  TOKEN_TYPE_JWT,
} from '@aoa/core';
import { errors, jwtVerify } from 'jose';
import type { IssuerContext } from '../domain/delegate.js';
import { OAuthError } from './oauth-form.js';

/** The `typ` an actor token must carry, so no other JWT (a DPoP proof, an ID token) can pass for one. */
export const ACTOR_TOKEN_TYP = 'aoa-actor+jwt';
const MAX_ACTOR_TOKEN_BYTES = 8192;

/** What a verified actor token says: the child it names and the key the new token is bound to. */
export interface Actor {
  child: string;
  /** The environment, when the actor token names one (`env`). */
  env: string | undefined;
  /** RFC 7638 thumbprint of the key that signed the actor token. */
  jkt: string;
}

/**
 * Verifies an RFC 8693 `actor_token`: a JWT the child signs with its DPoP key, carrying that public
 * key in the `jwk` header (as a DPoP proof does), `typ` {@link ACTOR_TOKEN_TYP}, `sub` `app:<child>`,
 * `aud` exactly the issuer, optional `env`, `iat`, `exp` within the replay window, and a `jti` used
 * once. The token then issued is bound to that key: the child proved it holds it.
 *
 * @example
 * const actor = await verifyActorToken(ctx, form.one('actor_token'), form.one('actor_token_type'));
 */
export async function verifyActorToken(ctx: IssuerContext, token: string, tokenType: string): Promise<Actor> {
  const fail = (reason: string): never => {
    throw new OAuthError(400, 'invalid_request', `actor_token: ${reason}`);
  };
  if (tokenType !== TOKEN_TYPE_JWT) fail(`actor_token_type must be ${TOKEN_TYPE_JWT}`);
  if (token.length > MAX_ACTOR_TOKEN_BYTES || token.split('.').length !== 3) fail('malformed');
  let jkt = '';
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(
      token,
      (header) => {
        const embedded = embeddedKey(header.jwk, header.alg);
        jkt = embedded.jkt;
        return embedded.key;
      },
      {
        algorithms: DPOP_ALGORITHMS,
        typ: ACTOR_TOKEN_TYP,
        audience: ctx.issuer,
        requiredClaims: ['sub', 'iat', 'exp', 'jti'],
        currentDate: new Date(ctx.clock.nowMs()),
        clockTolerance: 5,
      },
    ));
  } catch (error) {
    if (error instanceof EmbeddedJwkError) return fail(`${error.message} (the child key)`);
    return fail(error instanceof errors.JOSEError ? joseReason(error) : 'invalid');
  }
  const aud = payload.aud;
  if (Array.isArray(aud) && aud.length !== 1) fail('aud must be exactly the issuer identifier');
  const sub = payload.sub as string;
  const child = sub.startsWith('app:') ? sub.slice(4) : '';
  if (!isName(child)) fail('sub must be app:<child>');
  const env = payload.env;
  if (env !== undefined && (typeof env !== 'string' || !isName(env))) fail('env must be an environment name');
  const now = ctx.clock.nowMs() / 1000;
  const iat = payload.iat as number;
  if (iat > now + 5) fail('iat is in the future');
  if ((payload.exp as number) - iat > ctx.windowSeconds)
    fail(`claims a life longer than the replay window (${ctx.windowSeconds}s)`);
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) fail('jti missing');
  try {
    await ctx.replay.claim('dpop', `actor:${jkt}`, jti as string);
  } catch (error) {
    if (error instanceof AppError && error.code === 'unauthenticated') fail('jti was already used (replay)');
    throw error;
  }
  return { child, env: env as string | undefined, jkt };
}
