import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlDriver } from './driver.js';

/**
 * The versioned migrations, one file each (`NNN_name.sql`), shared by both stores: `infra/sql/auditor`
 * of the checkout, found by walking up from this file, so the sources (src/store/) and the bundle
 * (dist/main.js) find the same directory.
 */
function migrationsDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'infra', 'sql', 'auditor');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error('infra/sql/auditor not found above the auditor');
  }
}

/**
 * Applies, in order, every migration not yet in `schema_migrations`, in one transaction under an
 * advisory lock, so auditors starting at once against one database migrate it once.
 */
export async function migrate(db: SqlDriver, dir = migrationsDir()): Promise<number[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const sources = await Promise.all(
    files.map(async (f) => ({ version: Number(f.slice(0, 3)), sql: await readFile(join(dir, f), 'utf8') })),
  );
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const applied = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) =>
        Number(r.version),
      ),
    );
    const done: number[] = [];
    for (const { version, sql } of sources) {
      if (applied.has(version)) continue;
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      done.push(version);
    }
    return done;
  });
}

/** Arbitrary, fixed: the advisory lock key of the auditor's migrations. */
const MIGRATION_LOCK = 74_210_001;

/** Splits a migration on `;` at line ends, dropping comments; migrations keep to that form. */
function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
