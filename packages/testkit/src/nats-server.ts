import { dockerLooksAvailable, findNatsServerBinary, NATS_INSTALL_HINT } from './nats-binary.js';

/** Options of {@link startNats}. */
export interface StartNatsOptions {
  /** Enable JetStream with a fresh store directory. Default true. */
  jetstream?: boolean;
  /** A nats-server configuration file (`-c`); the port, host and store flags still override it. */
  configFile?: string;
  /** More command-line arguments for nats-server, appended last. */
  args?: string[];
}

/** A running NATS server started by {@link startNats}. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory (inside the container when running under Docker). */
  readonly storeDir: string;
  /** Stops the server and removes its store directory. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the server, runs `whileDown` (if given) while nothing listens, then starts it again on the
   * same port and store; resolves once it is ready.
   */
  restart(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /**
   * Suspends the server (SIGSTOP): its sockets stay open but it answers nothing, as a hung or
   * partitioned server would. Runs `whileFrozen`, then resumes it (SIGCONT). Needs a local binary.
   */
  freeze(whileFrozen: () => Promise<void>): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a real `nats-server` on a free loopback port and resolves once it accepts clients (and
 * JetStream is ready, unless disabled). The server dies with the calling process, even on SIGKILL.
 *
 * Uses a local binary (`NATS_SERVER_BIN`, `PATH`, `/usr/sbin/nats-server`); without one, a Docker
 * engine through testcontainers (`nats:2.9-alpine`); without either, it throws, never skips.
 *
 * @example
 * await using nats = await startNats();
 * const nc = await connect({ servers: nats.url });
 */
export async function startNats(options: StartNatsOptions = {}): Promise<NatsServer> {
  const binary = findNatsServerBinary();
  if (binary !== undefined) {
    const { startLocalNats } = await import('./nats-local.js');
    return startLocalNats(binary, options);
  }
  if (dockerLooksAvailable()) {
    const { startContainerNats } = await import('./nats-container.js');
    return startContainerNats(options);
  }
  throw new Error(`no nats-server binary found and no Docker engine reachable: ${NATS_INSTALL_HINT}`);
}
