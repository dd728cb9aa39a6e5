import pg from 'pg';
import type { SqlDriver, SqlExecutor } from './driver.js';

/** PostgreSQL through a `pg` pool: the production store. */
export function openPostgres(url: string, password?: string): SqlDriver {
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 5000,
    ...(password === undefined ? {} : { password }),
  });
  // An idle client losing its connection must not crash the process; the next query fails instead.
  pool.on('error', () => undefined);
  return {
    kind: 'postgres',
    query: async <R extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
      (await pool.query(text, params)).rows as R[],
    exec: async (text) => {
      await pool.query(text);
    },
    transaction: async (fn) => {
      const client = await pool.connect();
      // A checked-out client has no pool listener: a server shutdown between two queries of the
      // transaction would otherwise be an uncaught 'error' event. The next query fails instead.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const tx: SqlExecutor = {
          query: async <R extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
            (await client.query(text, params)).rows as R[],
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.off('error', onError);
        // A broken connection is destroyed, not returned to the pool.
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
