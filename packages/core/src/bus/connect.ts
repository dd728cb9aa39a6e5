import { readFile } from 'node:fs/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ServiceConfig } from '../config-fields.js';
import type { Logger } from '../logger.js';

/** PEM files for TLS to NATS: the CA to trust, and for mutual TLS this client's certificate and key. */
export interface NatsTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NatsOptions {
  url: string;
  /** Connection name shown by the server, e.g. `aoa-issuer`. */
  name: string;
  user?: string | undefined;
  /** File holding the user's password (secrets come from files, never from the environment). */
  passwordFile?: string | undefined;
  /** PEM files for TLS to the server; with them the connection refuses a server without TLS. */
  tls?: NatsTlsFiles | undefined;
  /** Reply subjects' prefix, when the user may subscribe only to its own (agents: `_INBOX_AGENT_<id>`). */
  inboxPrefix?: string | undefined;
}

const TLS_FAILURE = /certificate|self[- ]signed|tls|ssl|handshake/i;

/**
 * Connects with unbounded reconnects (services outlive NATS restarts) and logs status changes. A
 * first connection that fails its TLS handshake rejects with an error that says which setting to check.
 *
 * @example
 * const nc = await connectNats({ url: config.NATS_URL, name: 'aoa-issuer' }, log);
 */
export async function connectNats(options: NatsOptions, log: Logger): Promise<NatsConnection> {
  const pass = options.passwordFile ? (await readFile(options.passwordFile, 'utf8')).trim() : undefined;
  const nc = await connect({
    servers: options.url.split(',').map((s) => s.trim()),
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    // Async stack traces cost two Error objects per request: 13% of the issuer's CPU under load.
    noAsyncTraces: true,
    ...(options.user ? { user: options.user, pass } : {}),
    ...(options.tls ? { tls: { ...options.tls } } : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
  }).catch((error: unknown) => {
    throw tlsFailure(options, error) ?? error;
  });
  const natsLog = log.child({ component: 'nats' });
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'ping') continue;
      if (status.type === 'error') {
        // Permissions violations arrive here: a service refused something by its NATS user says so.
        natsLog.error({ status: status.type, err: status.error.message }, 'nats server error');
        continue;
      }
      natsLog.info(
        { status: status.type, server: 'server' in status ? status.server : undefined },
        'nats status',
      );
    }
  })().catch(() => undefined);
  return nc;
}

/** A TLS failure of the first connection explained, or undefined for any other failure. */
function tlsFailure(options: NatsOptions, error: unknown): Error | undefined {
  const reason =
    error instanceof Error ? [error.message, String(error.cause ?? '')].join(' ') : String(error);
  if (!TLS_FAILURE.test(reason)) return undefined;
  return new Error(
    `NATS TLS failed at ${options.url}: ${(error as Error).message}; ${tlsHint(options, reason)}`,
    {
      cause: error,
    },
  );
}

function tlsHint(options: NatsOptions, reason: string): string {
  if (/altname|does not match/i.test(reason)) {
    return "the server's certificate does not name the host in NATS_URL: connect by a name it carries";
  }
  if (/does not support/i.test(reason)) return 'the server offers no TLS, and NATS_TLS_* asks for it';
  return options.tls?.caFile
    ? `check that ${options.tls.caFile} (NATS_TLS_CA_FILE) signed the server's certificate`
    : "set NATS_TLS_CA_FILE to the CA that signed the server's certificate";
}

/** {@link connectNats} with a service's validated NATS settings, named `aoa-<service>` on the server. */
export function connectService(config: ServiceConfig, service: string, log: Logger): Promise<NatsConnection> {
  return connectNats(
    {
      url: config.natsUrl,
      name: `aoa-${service}`,
      user: config.natsUser,
      passwordFile: config.natsPasswordFile,
      tls: config.natsTls,
    },
    log,
  );
}
