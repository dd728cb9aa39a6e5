import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createDatabase, withoutPassword } from './database.js';
import { freePort } from './free-port.js';

async function databaseExists(adminUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const result = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return result.rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('createDatabase', () => {
  it('creates an empty database that can be queried, and drop removes it', async () => {
    const db = await createDatabase();
    assert.match(db.name, /^aoa_test_[0-9a-f]{16}$/);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
    assert.equal(rows[0]?.name, db.name);

    // Left connected on purpose: drop must force it closed.
    client.on('error', () => {});
    await db.drop();
    await db.drop();
    await client.end().catch(() => {});

    const adminUrl = new URL(db.url);
    adminUrl.pathname = '/postgres';
    assert.equal(await databaseExists(adminUrl.href, db.name), false);
  });

  it('names the server, without its password, when it cannot reach it', async () => {
    const url = `postgres://postgres:hunter2@127.0.0.1:${await freePort()}/postgres`;
    await assert.rejects(createDatabase({ url }), (error: Error) => {
      assert.match(error.message, /cannot reach PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+/);
      assert.ok(!error.message.includes('hunter2'));
      return true;
    });
  });

  it('hides the password of a URL', () => {
    assert.equal(withoutPassword('postgres://u:p@h:5432/d'), 'postgres://u:***@h:5432/d');
    assert.equal(withoutPassword('postgres://u@h/d'), 'postgres://u@h/d');
  });
});
