import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECT_TIMEOUT_MS = 5_000;

/** Options of {@link createDatabase}. */
export interface CreateDatabaseOptions {
  /** A server URL with rights to create databases; default `AOA_TEST_PG_URL`, else local postgres. */
  url?: string;
}

/** A fresh, empty PostgreSQL database made by {@link createDatabase}. */
export interface TestDatabase {
  /** Connection URL of the new database (same server and credentials as the admin URL). */
  readonly url: string;
  /** `aoa_test_<16 hex>`. */
  readonly name: string;
  /** Drops the database, closing any connection still open to it. Idempotent. */
  drop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates a database with a random name on a running PostgreSQL server, so each test gets its own.
 * Throws, never skips, when the server is unreachable; the message names the URL without password.
 *
 * @example
 * await using db = await createDatabase();
 * const pool = new pg.Pool({ connectionString: db.url });
 */
export async function createDatabase(options: CreateDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = options.url ?? process.env.AOA_TEST_PG_URL ?? DEFAULT_ADMIN_URL;
  const name = `aoa_test_${randomBytes(8).toString('hex')}`;
  await asAdmin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  const drop = (): Promise<void> => {
    dropped ??= asAdmin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    return dropped;
  };
  return { url: url.href, name, drop, [Symbol.asyncDispose]: drop };
}

/** Runs one statement on the admin connection; the name is generated here, so inlining it is safe. */
async function asAdmin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `cannot reach PostgreSQL at ${withoutPassword(adminUrl)}: ${String(error)}; start a server or set ` +
        'AOA_TEST_PG_URL',
      { cause: error },
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The URL with any password replaced, fit for an error message or a log. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return '<unparseable PostgreSQL URL>';
  }
}
