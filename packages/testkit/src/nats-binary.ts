import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const FALLBACK_BINARY = '/usr/sbin/nats-server';

/** How to get a NATS server on this machine, quoted by every "no NATS server" error. */
export const NATS_INSTALL_HINT =
  'install one with `apt-get update && apt-get install -y nats-server` (or set NATS_SERVER_BIN to a ' +
  'nats-server binary, or make a Docker engine reachable)';

/**
 * Finds a `nats-server` executable: `NATS_SERVER_BIN`, else the first on `PATH`, else
 * `/usr/sbin/nats-server`. Returns undefined when there is none.
 *
 * @throws Error when `NATS_SERVER_BIN` is set but does not name an executable file.
 * @example
 * const bin = findNatsServerBinary(); // '/usr/sbin/nats-server'
 */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.NATS_SERVER_BIN;
  if (explicit !== undefined && explicit !== '') {
    if (!isExecutable(explicit)) {
      throw new Error(`NATS_SERVER_BIN=${explicit} is not an executable file; ${NATS_INSTALL_HINT}`);
    }
    return explicit;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  return isExecutable(FALLBACK_BINARY) ? FALLBACK_BINARY : undefined;
}

/**
 * Whether a Docker engine looks reachable: `DOCKER_HOST` is set or `/var/run/docker.sock` exists.
 * A cheap hint only; testcontainers makes the real check when it starts.
 */
export function dockerLooksAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.DOCKER_HOST ?? '') !== '' || existsSync('/var/run/docker.sock');
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
