import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AoaClaims } from '@aoa/core';
import type { Verifier, VerifyRequest } from './verifier.js';
import { VerifyError } from './verify-error.js';

export interface ProtectOptions {
  /**
   * The externally visible origin (e.g. `https://jobs.internal`), so the proof's `htu` is compared
   * with what the client called even behind a proxy; by default `http://<Host header>`.
   */
  origin?: string;
  /**
   * Scopes every request through this guard needs; a token lacking one is answered 403
   * `insufficient_scope` with the needed scopes in the challenge (RFC 6750 section 3.1).
   *
   * @example
   * app.get('/metrics', { onRequest: fastifyProtect(verifier, { scopes: ['read:metrics'] }) }, handler);
   */
  scopes?: readonly string[];
}

/**
 * Wraps a `node:http` handler: verifies each request (and the `scopes` of `options` if any) and calls
 * `handler` with its claims, or answers the RFC 6750 / RFC 9449 error with its `WWW-Authenticate`
 * challenge and a small JSON body.
 *
 * @example
 * createServer(protect(verifier, (req, res, claims) => res.end(claims.sub), { origin: 'https://jobs.internal' }));
 */
export function protect(
  verifier: Verifier,
  handler: (req: IncomingMessage, res: ServerResponse, claims: AoaClaims) => void | Promise<void>,
  options: ProtectOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      let claims: AoaClaims;
      try {
        claims = await verifier.verify(requestOf(req, options));
      } catch (error) {
        const refusal = refusalOf(error);
        res.writeHead(refusal.status, { ...refusal.headers, 'content-type': 'application/json' });
        res.end(JSON.stringify(refusal.body));
        return;
      }
      await handler(req, res, claims);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  };
}

/** The verify request of a `node:http` request; a repeated `DPoP` header is refused by RFC 9449. */
export function requestOf(req: IncomingMessage, options: ProtectOptions = {}): VerifyRequest {
  const origin = options.origin ?? `http://${req.headers.host ?? 'localhost'}`;
  const dpop = dpopHeaders(req);
  return {
    authorization: req.headers.authorization,
    dpop: dpop && dpop.length === 1 ? dpop[0] : undefined,
    method: req.method ?? 'GET',
    url: new URL(req.url ?? '/', origin).href,
    ...(options.scopes ? { scopes: options.scopes } : {}),
  };
}

/** The HTTP answer to a refused request: status, `WWW-Authenticate` challenge, and a small JSON body. */
export function refusalOf(error: unknown): {
  status: number;
  headers: Record<string, string>;
  body: { error: string; error_description: string };
} {
  const refusal = error instanceof VerifyError ? error : new VerifyError('invalid_token', 'invalid');
  return {
    status: refusal.status,
    headers: { 'www-authenticate': refusal.wwwAuthenticate, 'cache-control': 'no-store' },
    body: { error: refusal.code, error_description: refusal.reason },
  };
}

/**
 * Every `DPoP` header value: `headersDistinct` on a real `node:http` request; from `rawHeaders` on a
 * request object that lacks it (Fastify's `inject`), so a repeated header is refused there too.
 */
function dpopHeaders(req: IncomingMessage): string[] | undefined {
  if (req.headersDistinct) return req.headersDistinct.dpop;
  const values: string[] = [];
  const raw = req.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === 'dpop') values.push(raw[i + 1] as string);
  }
  return values.length > 0 ? values : undefined;
}
