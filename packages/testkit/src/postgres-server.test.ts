import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startPostgres } from './postgres-server.js';

const CLOSE_DEADLINE_MS = 15_000;

async function queryOnce(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const accepts = (url: string) =>
  queryOnce(url, 'SELECT 1').then(
    () => true,
    () => false,
  );

describe('startPostgres', () => {
  it('keeps its data across stop and start on the same port, refuses clients while stopped, and destroy removes it', async () => {
    const server = await startPostgres();
    try {
      assert.match(server.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      await queryOnce(server.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
      const client = new pg.Client({ connectionString: server.url });
      client.on('error', () => {});
      await client.connect();

      // Fast shutdown: an open session does not hold the server up.
      await server.stop();
      assert.equal(server.running(), false);
      assert.equal(await accepts(server.url), false);
      await client.end().catch(() => undefined);

      await server.start();
      assert.equal(server.running(), true);
      assert.deepEqual(await queryOnce(server.url, 'SELECT n FROM kept'), [{ n: 42 }]);
    } finally {
      await server.destroy();
    }
    assert.equal(existsSync(server.dataDir), false);
    await assert.rejects(server.start(), /destroyed/);
  });
});

/** A child node process that starts a server, prints its address, then waits to be killed. */
const HOLDER = `
const { startPostgres } = await import(${JSON.stringify(new URL('./index.ts', import.meta.url).href)});
const server = await startPostgres();
process.stdout.write(JSON.stringify({ url: server.url, dataDir: server.dataDir }) + '\\n');
setInterval(() => {}, 1_000);
`;

describe('a private PostgreSQL started by a process that is SIGKILLed', () => {
  it('stops accepting clients and loses its data directory', async () => {
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOLDER], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(holder.stdout, 'data')) as [Buffer];
      const { url, dataDir } = JSON.parse(line.toString('utf8')) as { url: string; dataDir: string };
      assert.equal(await accepts(url), true);

      holder.kill('SIGKILL');
      await once(holder, 'exit');

      const deadline = Date.now() + CLOSE_DEADLINE_MS;
      while ((await accepts(url)) || existsSync(dataDir)) {
        assert.ok(Date.now() < deadline, `${url} still accepting or ${dataDir} still there`);
        await sleep(100);
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
