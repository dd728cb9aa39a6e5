import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps, Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { ReloadingTlsFiles, type TlsFiles } from './tls-files.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/** Sends a JSON body with `no-store` unless told otherwise. */
export function sendJson(
  res: ServerResponse,
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(statusCode, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

/**
 * A small HTTP(S) server routing `METHOD /path` to handlers; anything else is a JSON 404 or 405, and
 * a handler that throws is a JSON 500 with no detail.
 *
 * @example
 * const http = await startHttpServer({ listen: '127.0.0.1:0', routes: { 'GET /healthz': (_, res) => sendJson(res, 200, { status: 'ok' }) }, log });
 */
export async function startHttpServer(options: {
  listen: { host: string; port: number };
  routes: Record<string, HttpHandler>;
  log: Logger;
  tls?: TlsFiles | undefined;
}): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const { routes, log } = options;
  const paths = new Set(Object.keys(routes).map((r) => r.slice(r.indexOf(' ') + 1)));
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = routes[`${req.method} ${path}`];
    if (!handler) {
      sendJson(res, paths.has(path) ? 405 : 404, {
        error: paths.has(path) ? 'method not allowed' : 'not found',
      });
      return;
    }
    try {
      await handler(req, res);
    } catch (error) {
      log.error({ err: error, path }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    }
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
  const tls = options.tls;
  const files = tls && new ReloadingTlsFiles(tls, log);
  const material = files?.current();
  const server = material
    ? createHttps(
        {
          cert: material.cert,
          key: material.key,
          // Asked for, not required; an unverified certificate leaves `socket.authorized` false.
          ...(material.ca ? { requestCert: true, rejectUnauthorized: false, ca: material.ca } : {}),
        },
        listener,
      )
    : createHttp(listener);
  if (files && server instanceof HttpsServer) {
    files.onChange((m) =>
      server.setSecureContext({ cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}) }),
    );
  }
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info(
    { host: options.listen.host, port, tls: Boolean(tls), clientCertificates: Boolean(tls?.clientCaFile) },
    'http listening',
  );
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        files?.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * What every service serves over HTTP: `/healthz` (the process answers), `/readyz` (503 with the
 * reasons while a dependency is missing) and `/metrics` (Prometheus).
 *
 * @example
 * routes: { ...serviceRoutes({ registry: metrics.registry, notReady: () => [] }) }
 */
export function serviceRoutes(deps: {
  registry: Registry;
  notReady(): string[];
}): Record<string, HttpHandler> {
  return {
    'GET /healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    'GET /readyz': (_req, res) => {
      const problems = deps.notReady();
      sendJson(res, problems.length === 0 ? 200 : 503, { ready: problems.length === 0, problems });
    },
    'GET /metrics': async (_req, res) => {
      const body = await deps.registry.metrics();
      res.writeHead(200, { 'content-type': deps.registry.contentType });
      res.end(body);
    },
  };
}
