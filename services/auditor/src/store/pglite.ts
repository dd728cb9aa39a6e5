import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { SqlDriver, SqlExecutor } from './driver.js';

/**
 * PGlite (PostgreSQL compiled to WASM) persisting to a directory: the embedded development store.
 * It runs in this process only, with relaxed durability (no fsync): never use it in production.
 */
export async function openPglite(dataDir: string): Promise<SqlDriver> {
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, { relaxedDurability: true });
  return {
    kind: 'pglite',
    query: async <R extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
      (await db.query<R>(text, params)).rows,
    exec: async (text) => {
      await db.exec(text);
    },
    transaction: (fn) =>
      db.transaction(async (t) => {
        const tx: SqlExecutor = {
          query: async <R extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
            (await t.query<R>(text, params)).rows,
        };
        return fn(tx);
      }),
    close: () => db.close(),
  };
}
