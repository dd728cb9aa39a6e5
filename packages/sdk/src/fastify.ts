import type { AoaClaims } from '@aoa/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ProtectOptions, refusalOf, requestOf } from './node-http.js';
import type { Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified claims of the request's aoa token, set by {@link fastifyProtect}. */
    aoa?: AoaClaims;
  }
}

/**
 * A Fastify `onRequest`/`preHandler` hook: verifies each request (signature, claims, audience, DPoP
 * binding, revocation, all locally, then the `scopes` of `options` if any) and sets `request.aoa` to
 * its claims, or answers the RFC 6750 / RFC 9449 error with its `WWW-Authenticate` challenge and ends
 * the request there. Fastify itself is the application's dependency; this module only needs its types.
 *
 * @example
 * app.addHook('onRequest', fastifyProtect(verifier, { origin: 'https://jobs.internal' }));
 * app.get('/jobs', async (request) => ({ sub: request.aoa?.sub }));
 */
export function fastifyProtect(
  verifier: Verifier,
  options: ProtectOptions = {},
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    try {
      request.aoa = await verifier.verify(requestOf(request.raw, options));
    } catch (error) {
      const refusal = refusalOf(error);
      await reply.code(refusal.status).headers(refusal.headers).send(refusal.body);
    }
  };
}
