import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import { type GuardedProcess, spawnGuarded } from './guarded-process.js';

const READY_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 50;
const PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;
const INSTALL_HINT =
  'install PostgreSQL server binaries (Debian: apt-get install postgresql) or put initdb, pg_ctl and postgres on PATH';

/** A private PostgreSQL server made by {@link startPostgres}. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; trust authentication, no password. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Whether the server is running (between a resolved `start()` and `stop()`). */
  running(): boolean;
  /** Fast shutdown (`pg_ctl stop -m fast`): open sessions are cut, the data directory stays. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and data directory; resolves once it accepts clients. */
  start(): Promise<void>;
  /** Stops the server and removes its data directory. Idempotent. */
  destroy(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Runs a PostgreSQL server of its own (`initdb` into a temporary directory, trust authentication,
 * listening on a free loopback port only), for tests that must stop the database under a service
 * without touching a shared server. The server dies with the calling process, even on SIGKILL, and
 * its directory is then removed. Run as root, the binaries run as the `postgres` user, since
 * PostgreSQL refuses root. Throws, never skips, when the binaries are missing.
 *
 * @example
 * await using server = await startPostgres();
 * await server.stop();
 * await server.start();
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBinaries();
  const user = process.getuid?.() === 0 ? postgresUser() : undefined;
  const root = await mkdtemp(join(tmpdir(), 'aoa-pg-'));
  try {
    if (user) await chown(root, user.uid, user.gid);
    const dataDir = join(root, 'data');
    await run(user, join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    const port = await freePort();
    const server = new LocalPostgres(bin, user, root, dataDir, port);
    await server.start();
    return server;
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

interface PostgresUser {
  uid: number;
  gid: number;
}

class LocalPostgres implements PostgresServer {
  readonly url: string;
  private proc: GuardedProcess | undefined;
  private destroyed: Promise<void> | undefined;

  constructor(
    private readonly bin: string,
    private readonly user: PostgresUser | undefined,
    private readonly root: string,
    readonly dataDir: string,
    readonly port: number,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  running(): boolean {
    return this.proc !== undefined && !this.proc.hasExited();
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error('start: this PostgreSQL server was destroyed');
    if (this.running()) return;
    const args = [
      join(this.bin, 'postgres'),
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
    ];
    // setpriv execs in place, so the guard's pid is the postmaster itself.
    const proc = this.user
      ? spawnGuarded('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', ...args], {
          cleanupDir: this.root,
        })
      : spawnGuarded(args[0] as string, args.slice(1), { cleanupDir: this.root });
    this.proc = proc;
    await waitUntilAccepting(proc, this.url);
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.hasExited()) return;
    // The guard's planned stop comes first, so it keeps the data directory; its SIGTERM asks for a
    // smart shutdown, which would wait for every client, and pg_ctl turns it into a fast one.
    const stopped = proc.stop();
    try {
      await run(this.user, join(this.bin, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'fast', '-w']);
    } catch (error) {
      if (!proc.hasExited()) {
        await stopped;
        throw error;
      }
    }
    await stopped;
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      await this.proc?.stop();
      await rm(this.root, { recursive: true, force: true });
    })();
    return this.destroyed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }
}

/** The directory holding initdb, pg_ctl and postgres: from PATH, else the newest /usr/lib/postgresql/N/bin. */
export function findPostgresBinaries(): string {
  const hasAll = (dir: string) => PROGRAMS.every((p) => existsSync(join(dir, p)));
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const initdb = join(dir, 'initdb');
    if (!existsSync(initdb)) continue;
    const real = dirname(realpathSync(initdb));
    if (hasAll(real)) return real;
    if (hasAll(dir)) return dir;
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    const dir = join(base, version, 'bin');
    if (hasAll(dir)) return dir;
  }
  throw new Error(`PostgreSQL server binaries (${PROGRAMS.join(', ')}) not found: ${INSTALL_HINT}`);
}

function postgresUser(): PostgresUser {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch (error) {
    throw new Error(
      'running as root, PostgreSQL must run as the postgres user, but there is none: create it (useradd postgres) or run as another user',
      { cause: error },
    );
  }
}

/** Runs a short-lived PostgreSQL tool (as `user` when given) and rejects with its output on failure. */
function run(user: PostgresUser | undefined, file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { ...(user ?? {}), cwd: '/', env: { ...process.env, LC_ALL: 'C' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${file} ${args[0]} failed: ${error.message}\n${stdout}${stderr}`));
        else resolve();
      },
    );
  });
}

async function waitUntilAccepting(proc: GuardedProcess, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      throw new Error(`postgres exited during start (${await proc.exited}):\n${proc.outputTail()}`);
    }
    if (await accepts(url)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  await proc.stop();
  throw new Error(`postgres not accepting clients after ${READY_TIMEOUT_MS} ms:\n${proc.outputTail()}`);
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
