import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { STREAMS } from '@aoa/core';
import { auditor as pb } from '@aoa/proto';
import { startNats, startPostgres } from '@aoa/testkit';
import { credentials, Metadata } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { CONSUMER } from '../services/auditor/src/app.js';
import { chainRows, GENESIS_HASH, type RowContent } from '../services/auditor/src/domain/chain.js';
import { AuditStore, FencedError } from '../services/auditor/src/store/audit-store.js';
import { migrate } from '../services/auditor/src/store/migrations.js';
import { openPostgres } from '../services/auditor/src/store/postgres.js';
import {
  type AuditorAccess,
  burst,
  cleanupAfterAll,
  publisher,
  standaloneAccess,
  until,
  verdict,
} from './support/auditor.js';
import { clientAssertion } from './support/oauth.js';
import { buildServices, type ServiceProcess, startBuilt, waitForLog } from './support/processes.js';

// Issue #14 item 1: a writer paused past its lease must not commit what it held, and the writer that
// took over must not stall on sequences the old one stored. Two auditor processes on one PostgreSQL.

const cleanups = cleanupAfterAll();

const event = (i: number): RowContent => ({
  seq: i,
  part: 0,
  parts: 1,
  id: `ev-${i}`,
  type: 'key.prepared',
  time: new Date().toISOString(),
  source: 'test',
  subject: `kid-${i}`,
  data: { kid: `kid-${i}` },
  marker: null,
});

describe('the writer fence', () => {
  it('refuses the commit of a writer whose epoch a newer writer has passed, in the same transaction', async () => {
    const postgres = await startPostgres();
    cleanups.push(() => postgres.destroy());
    const db = await openPostgres(postgres.url);
    cleanups.push(() => db.close());
    await migrate(db);
    const store = new AuditStore(db);
    const old = { epoch: 10, holder: 'auditor-a' };
    const newer = { epoch: 12, holder: 'auditor-b' };
    assert.equal(await store.raiseFence(old), true);
    const rows = chainRows(GENESIS_HASH, [event(1), event(2)]);
    await store.append(old, rows.slice(0, 1), []);
    assert.equal(await store.raiseFence(newer), true);
    assert.equal(await store.raiseFence(old), false, 'the fence never goes back');
    await assert.rejects(store.append(old, rows.slice(1), []), (error: unknown) => {
      assert.ok(error instanceof FencedError);
      assert.match(error.message, /fence is at epoch 12 \(auditor-b\), not 10/);
      return true;
    });
    await store.append(newer, rows.slice(1), []);
    assert.deepEqual(await store.head(), { seq: 2, hash: rows[1]?.hash });
  });
});

describe('two auditor processes on one PostgreSQL', () => {
  let access: AuditorAccess;
  before(async () => {
    buildServices('auditor');
    const own = await standaloneAccess();
    access = own.access;
    cleanups.push(own.remove);
  });

  async function system() {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const postgres = await startPostgres();
    cleanups.push(() => postgres.destroy());
    const env = {
      NATS_URL: nats.url,
      AOA_POLICY_FILE: access.policyPath,
      AOA_ISSUER_URL: access.issuer,
      AOA_AUDIT_DB: postgres.url,
      AOA_AUDITOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_ACK_WAIT: '2s',
      AOA_AUDITOR_LEASE_TTL: '1s',
      AOA_AUDITOR_BATCH_SIZE: '100',
      AOA_AUDITOR_CHECKPOINT_EVERY: '500',
      AOA_AUDITOR_CHECKPOINT_INTERVAL: '500ms',
      LOG_LEVEL: 'info',
    };
    const start = async (): Promise<ServiceProcess & { grpcPort: number }> => {
      const p = startBuilt('auditor', env);
      cleanups.push(async () => {
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
        await p.exited;
      });
      const started = await waitForLog(p, 'auditor started');
      return Object.assign(p, { grpcPort: Number(started.grpcPort) });
    };
    const a = await start();
    await waitForLog(a, 'writer lease taken');
    const b = await start();
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const db = await openPostgres(postgres.url);
    cleanups.push(() => db.close());
    return { nats, a, b, audit, jsm: await jetstreamManager(nc), store: new AuditStore(db) };
  }

  /** Every published event stored exactly once, nothing pending, and the chain intact by VerifyChain. */
  async function assertReconciled(
    s: Awaited<ReturnType<typeof system>>,
    ids: string[],
    survivor: { grpcPort: number },
  ) {
    const stored = () =>
      s.store.db.query<{ n: unknown; ids: unknown }>(
        'SELECT count(*) AS n, count(DISTINCT id) AS ids FROM audit_events WHERE marker IS NULL',
      );
    await until('every event stored', async () => Number((await stored())[0]?.n) >= ids.length, 90_000);
    const [counts] = await stored();
    assert.deepEqual([Number(counts?.n), Number(counts?.ids)], [ids.length, ids.length], 'each event once');
    const missing = await s.store.existingIds(ids);
    assert.equal(missing.size, ids.length, 'the stored ids are the published ones');
    const markers = await s.store.db.query<{ marker: string; n: unknown }>(
      'SELECT marker, count(*) AS n FROM audit_events WHERE marker IS NOT NULL GROUP BY marker',
    );
    assert.deepEqual(markers, [], 'no duplicate, dead-letter or lost markers');
    await until('the consumer drained', async () => {
      const info = await s.jsm.consumers.info(STREAMS.audit, CONSUMER);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    const client = new pb.AuditorClient(`127.0.0.1:${survivor.grpcPort}`, credentials.createInsecure());
    try {
      const metadata = new Metadata();
      metadata.set('client-assertion', await clientAssertion('ops', access.admin.key, access.issuer));
      const verified = await new Promise<pb.VerifyChainResponse>((resolve, reject) =>
        client.verifyChain({}, metadata, (error, response) => (error ? reject(error) : resolve(response))),
      );
      assert.deepEqual(verdict(verified), { ok: true, checked: ids.length, problems: [] });
    } finally {
      client.close();
    }
  }

  it('a writer paused past its lease (SIGSTOP) mid-burst: the standby takes over, the resumed writer stores nothing, every event is stored once', async () => {
    const s = await system();
    const ids = await burst(s.audit, 1500);
    await until('some events stored', async () => ((await s.store.head())?.seq ?? 0) >= 300);
    s.a.child.kill('SIGSTOP');
    try {
      await waitForLog(s.b, 'writer lease taken');
      ids.push(...(await burst(s.audit, 1500)));
      await until('the new writer storing', async () => ((await s.store.head())?.seq ?? 0) >= 1600);
    } finally {
      s.a.child.kill('SIGCONT');
    }
    ids.push(...(await burst(s.audit, 1000)));
    // Resumed, the old writer stands down either way: its lease tick finds the lease lost, or its
    // batch in flight meets the fence first and its session ends there.
    await waitForLog(s.a, [
      'writer lease lost: standing by',
      'fenced: a newer writer took over, returning the batch',
      'a newer writer holds the fence: not writing',
    ]);
    await assertReconciled(s, ids, s.b);
  });

  it('a writer killed (SIGKILL) mid-burst: the standby takes over and stores every event once', async () => {
    const s = await system();
    const first = burst(s.audit, 2000);
    await until('some events stored', async () => ((await s.store.head())?.seq ?? 0) >= 200);
    s.a.child.kill('SIGKILL');
    const ids = await first;
    await waitForLog(s.b, 'writer lease taken');
    ids.push(...(await burst(s.audit, 1000)));
    await assertReconciled(s, ids, s.b);
  });
});
