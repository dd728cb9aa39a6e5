import { freePort } from './free-port.js';
import type { NatsServer, StartNatsOptions } from './nats-server.js';

const IMAGE = 'nats:2.9-alpine';
const CLIENT_PORT = 4222;
const MONITOR_PORT = 8222;
const STORE_DIR = '/data/jetstream';

/**
 * Runs `nats:2.9-alpine` through testcontainers, for machines with Docker but no nats-server binary.
 * The client port is bound to a fixed free host port so that it survives `restart()`; the store lives
 * in the container, so it survives a restart and goes with the container on `stop()`. Testcontainers'
 * reaper removes the container if this process dies. Use {@link startNats}.
 */
export async function startContainerNats(options: StartNatsOptions): Promise<NatsServer> {
  // Lazy: testcontainers is heavy, and only this fallback needs it.
  const { GenericContainer, Wait } = await import('testcontainers');
  const jetstream = options.jetstream ?? true;
  const command = ['-m', String(MONITOR_PORT)];
  if (jetstream) command.push('-js', '-sd', STORE_DIR);
  const container = new GenericContainer(IMAGE);
  if (options.configFile !== undefined) {
    container.withCopyFilesToContainer([{ source: options.configFile, target: '/etc/nats/test.conf' }]);
    command.push('-c', '/etc/nats/test.conf');
  }
  command.push(...(options.args ?? []));
  const port = await freePort();
  const started = await container
    .withCommand(command)
    .withExposedPorts({ container: CLIENT_PORT, host: port }, MONITOR_PORT)
    .withWaitStrategy(Wait.forHttp(`/healthz${jetstream ? '?js-enabled-only=true' : ''}`, MONITOR_PORT))
    .start();
  const host = started.getHost();
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= started.stop().then(() => undefined);
    return stopped;
  };
  return {
    url: `nats://${host}:${port}`,
    port,
    storeDir: STORE_DIR,
    stop,
    async restart(options = {}) {
      if (stopped !== undefined) throw new Error('restart: this NATS server was stopped');
      if (options.whileDown) throw new Error('restart: whileDown needs a local nats-server binary');
      await started.restart();
    },
    async freeze() {
      throw new Error('freeze: suspending the server needs a local nats-server binary');
    },
    [Symbol.asyncDispose]: stop,
  };
}
