import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createDatabase } from '@aoa/testkit';
import { chainRows, GENESIS_HASH, type RowContent } from '../services/auditor/src/domain/chain.js';
import { ChainVerifier } from '../services/auditor/src/domain/verify.js';
import { AuditStore } from '../services/auditor/src/store/audit-store.js';
import { migrate } from '../services/auditor/src/store/migrations.js';
import { openPostgres } from '../services/auditor/src/store/postgres.js';
import { cleanupAfterAll } from './support/auditor.js';

// ADR 11: a store written before batch messages (migrations 001-005) upgrades in place. Its rows
// become part 0, its chain verifies as it did, and batch messages' rows chain on after them.

const cleanups = cleanupAfterAll();
const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), '..', 'infra', 'sql', 'auditor');

const row = (seq: number, overrides: Partial<RowContent> = {}): RowContent => ({
  seq,
  part: 0,
  parts: 1,
  id: `ev-${seq}`,
  type: 'key.prepared',
  time: '2026-12-01T00:00:00.000Z',
  source: 'test',
  subject: `kid-${seq}`,
  data: { kid: `kid-${seq}` },
  marker: null,
  ...overrides,
});

/** The migrations a store had before version 6, in their own directory. */
async function migrationsBefore(version: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-migrations-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  for (const file of await readdir(MIGRATIONS)) {
    if (Number(file.slice(0, 3)) < version) await copyFile(join(MIGRATIONS, file), join(dir, file));
  }
  return dir;
}

async function verifyAll(store: AuditStore) {
  const verifier = new ChainVerifier();
  for (const r of await store.rowsAfter({ seq: 0, part: 0 }, 10_000)) verifier.push(r);
  return verifier.finish([]);
}

describe('an audit store from before batch messages', () => {
  it('upgrades in place: old rows are part 0 and verify as before, batch rows chain on after them', async () => {
    const database = await createDatabase();
    cleanups.push(() => database.drop());
    const db = openPostgres(database.url);
    cleanups.push(() => db.close());
    assert.deepEqual(await migrate(db, await migrationsBefore(6)), [1, 2, 3, 4, 5]);
    // Rows as a version-5 auditor wrote them: no part column, a duplicate marker among them.
    const old = chainRows(GENESIS_HASH, [
      row(1),
      row(2, { id: null, data: { duplicate_of: 'ev-1' }, marker: 'duplicate' }),
      row(3),
    ]);
    for (const r of old) {
      await db.query(
        'INSERT INTO audit_events (seq, id, type, time, source, subject, data, prev_hash, hash, marker) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)',
        [
          r.seq,
          r.id,
          r.type,
          r.time,
          r.source,
          r.subject,
          JSON.stringify(r.data),
          r.prevHash,
          r.hash,
          r.marker,
        ],
      );
    }

    assert.deepEqual(await migrate(db), [6]);
    const store = new AuditStore(db);
    assert.deepEqual(
      (await store.rowsAfter({ seq: 0, part: 0 }, 10)).map((r) => [r.seq, r.part, r.hash]),
      old.map((r) => [r.seq, 0, r.hash]),
    );
    assert.deepEqual((await verifyAll(store)).problems, []);

    // A batch message at seq 4 (its second event a late duplicate), then a single event at seq 5.
    const writer = { epoch: 1, holder: 'test' };
    await store.raiseFence(writer);
    const batch = chainRows(old.at(-1)?.hash ?? GENESIS_HASH, [
      row(4, { parts: 3, id: 'ev-4a', subject: 'kid-4a' }),
      row(4, { part: 1, parts: 3, id: null, data: { duplicate_of: 'ev-1' }, marker: 'duplicate' }),
      row(4, { part: 2, parts: 3, id: 'ev-4c', subject: 'kid-4c' }),
      row(5),
    ]);
    await store.append(writer, batch, []);
    assert.deepEqual(await store.head(), { seq: 5, hash: batch.at(-1)?.hash });
    assert.deepEqual(await store.positionOfEvent('ev-4c'), { seq: 4, part: 2 });
    const verified = await verifyAll(store);
    assert.deepEqual([verified.ok, verified.checked, verified.problems], [true, 7, []]);
    // A retried write looks up every event id of its batch: one parameter however many (a pulled
    // batch of batch messages holds far more ids than PostgreSQL's 65,535 parameters).
    const ids = Array.from({ length: 70_000 }, (_, i) => `absent-${i}`);
    assert.deepEqual([...(await store.existingIds([...ids, 'ev-4c', 'ev-1']))].sort(), ['ev-1', 'ev-4c']);
    // The key is (seq, part): the same part of a sequence cannot be stored twice.
    await assert.rejects(
      db.query(
        "INSERT INTO audit_events (seq, part, parts, id, type, time, source, subject, data, prev_hash, hash) VALUES (4, 2, 3, 'x-4c', 't.t', now(), 's', 's', '{}', 'p', 'h')",
      ),
      /duplicate key/,
    );
  });
});
