import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { type GuardedProcess, spawnGuarded } from './guarded-process.js';
import type { NatsServer, StartNatsOptions } from './nats-server.js';

const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 25;
const START_ATTEMPTS = 3;

/**
 * Runs `binary` through {@link spawnGuarded} on free loopback ports, with its monitoring endpoint on
 * a second port; ready means `/healthz` answers 200 (with `js-enabled-only` when JetStream is on).
 * Use {@link startNats}, which picks this or a container.
 */
export async function startLocalNats(binary: string, options: StartNatsOptions): Promise<NatsServer> {
  const jetstream = options.jetstream ?? true;
  const storeDir = await mkdtemp(join(tmpdir(), 'aoa-nats-'));
  let lastError: unknown;
  // A port found free can be taken before nats-server binds it; try again on fresh ports.
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const monitorPort = await freePort();
    const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)];
    if (jetstream) args.push('-js', '-sd', storeDir);
    if (options.configFile !== undefined) args.push('-c', options.configFile);
    args.push(...(options.args ?? []));
    const healthUrl = `http://127.0.0.1:${monitorPort}/healthz${jetstream ? '?js-enabled-only=true' : ''}`;
    const launch = async (): Promise<GuardedProcess> => {
      const proc = spawnGuarded(binary, args, { cleanupDir: storeDir });
      await waitUntilHealthy(proc, healthUrl);
      return proc;
    };
    try {
      return wrap(await launch(), launch, port, storeDir);
    } catch (error) {
      lastError = error;
      if (!String(error).includes('address already in use')) break;
    }
  }
  await rm(storeDir, { recursive: true, force: true });
  throw lastError;
}

function wrap(
  first: GuardedProcess,
  launch: () => Promise<GuardedProcess>,
  port: number,
  storeDir: string,
): NatsServer {
  let proc = first;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await proc.stop();
      await rm(storeDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    async restart(options = {}) {
      if (stopped !== undefined) throw new Error('restart: this NATS server was stopped');
      await proc.stop();
      try {
        await options.whileDown?.();
      } finally {
        proc = await launch();
      }
    },
    async freeze(whileFrozen) {
      if (stopped !== undefined) throw new Error('freeze: this NATS server was stopped');
      process.kill(-proc.pid, 'SIGSTOP');
      try {
        await whileFrozen();
      } finally {
        process.kill(-proc.pid, 'SIGCONT');
      }
    },
    [Symbol.asyncDispose]: stop,
  };
}

async function waitUntilHealthy(proc: GuardedProcess, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      throw new Error(`nats-server exited during start (${await proc.exited}):\n${proc.outputTail()}`);
    }
    if ((await httpStatus(url)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  await proc.stop();
  throw new Error(`nats-server not healthy after ${READY_TIMEOUT_MS} ms at ${url}:\n${proc.outputTail()}`);
}

/** The status code of a GET, or 0 when nothing answers; no keep-alive so no socket lingers. */
function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const request = get(url, { agent: false, timeout: 1_000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}
