import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import {
  type Clock,
  type HttpHandler,
  hostForUrl,
  type Logger,
  runCleanup,
  serviceRoutes,
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { type ChannelCredentials, credentials } from '@grpc/grpc-js';
import type { JWK } from 'jose';
import * as oidc from 'openid-client';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ConsoleConfig } from './config.js';
import { AoaServices } from './domain/services.js';
import { SessionStore } from './domain/sessions.js';
import { consoleRoutes } from './http/routes.js';
import { SECURITY_HEADERS } from './http/web.js';

export interface ConsoleDeps {
  logger: Logger;
  clock?: Clock;
  /** Collect process-wide default metrics (off when several services share a process). */
  defaultMetrics?: boolean;
}

export interface RunningConsole {
  /** The base URL browsers use. */
  url: string;
  httpPort: number;
  sessions(): number;
  stop(): Promise<void>;
}

const STATIC: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

/**
 * Composes the console: its secrets (the IdP client secret, the aoa client key), the IdP by OIDC
 * discovery, the aoa services' gRPC clients, the sessions, and the HTTP routes. Nothing happens until
 * `start()`.
 */
export function buildConsole(config: ConsoleConfig, deps: ConsoleDeps): { start(): Promise<RunningConsole> } {
  return { start: () => startConsole(config, deps) };
}

async function startConsole(config: ConsoleConfig, deps: ConsoleDeps): Promise<RunningConsole> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ component: 'console' });
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const clientJwk = readPrivateJwk(config.client.keyFile);
    const clientSecret = readFileSync(config.oidc.clientSecretFile, 'utf8').trim();
    const insecure = new URL(config.oidc.issuer).protocol === 'http:';
    const oidcConfig = await oidc.discovery(
      new URL(config.oidc.issuer),
      config.oidc.clientId,
      clientSecret,
      undefined,
      insecure ? { execute: [oidc.allowInsecureRequests] } : undefined,
    );
    const services = new AoaServices({
      issuerUrl: config.issuerUrl,
      issuerGrpc: config.issuerGrpc,
      auditor: config.auditor,
      revoker: config.revoker,
      rotator: config.rotator,
      channel: channel(config.grpcCaFile),
      client: { id: config.client.id, jwk: clientJwk, app: config.client.app, env: config.client.env },
    });
    cleanup.push(() => services.close());
    const sessions = new SessionStore(clock, config.sessionTtlSeconds * 1000, config.maxSessions);

    const registry = new Registry();
    if (deps.defaultMetrics) collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'aoa_console_sessions',
      help: 'Signed-in console sessions held by this replica',
      registers: [registry],
      collect() {
        this.set(sessions.size());
      },
    });
    const statics = Object.fromEntries(
      Object.entries(STATIC).map(([file, type]) => [
        `GET /static/${file}`,
        staticFile(readFileSync(new URL(`./static/${file}`, import.meta.url)), type),
      ]),
    );
    // The public URL is known before listening unless the port is chosen at random (tests, aoa dev).
    let publicUrl = config.publicUrl ?? '';
    const http = await startHttpServer({
      listen: config.httpListen,
      log,
      tls: config.tls,
      routes: {
        ...serviceRoutes({ registry, notReady: () => [] }),
        ...statics,
        ...consoleRoutes({
          services,
          oidc: {
            config: oidcConfig,
            client: oidc,
            resource: config.oidc.resource,
            scope: config.oidc.scope,
          },
          sessions,
          publicUrl: () => publicUrl,
          clock,
          log,
        }),
      },
    });
    cleanup.push(() => http.close());
    publicUrl ||= `${config.tls ? 'https' : 'http'}://${hostForUrl(config.httpListen.host)}:${http.port}`;
    log.info({ url: publicUrl, idp: config.oidc.issuer }, 'console started');
    return {
      url: publicUrl,
      httpPort: http.port,
      sessions: () => sessions.size(),
      stop: () => runCleanup(cleanup),
    };
  } catch (error) {
    await runCleanup(cleanup);
    throw error;
  }
}

function readPrivateJwk(file: string): JWK {
  let jwk: unknown;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`AOA_CONSOLE_CLIENT_KEY_FILE: ${file} is not a JSON private JWK`);
  }
  if (typeof jwk !== 'object' || jwk === null || typeof (jwk as JWK).d !== 'string') {
    throw new Error(`AOA_CONSOLE_CLIENT_KEY_FILE: ${file} holds no private JWK`);
  }
  return jwk as JWK;
}

function channel(caFile: string | undefined): ChannelCredentials {
  return caFile ? credentials.createSsl(readFileSync(caFile)) : credentials.createInsecure();
}

function staticFile(body: Buffer, type: string): HttpHandler {
  return (_req, res: ServerResponse) => {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': String(body.length),
      'cache-control': 'public, max-age=300',
    });
    res.end(body);
  };
}
