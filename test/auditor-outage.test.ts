import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { STREAMS, Subjects } from '@aoa/core';
import { startNats, startPostgres } from '@aoa/testkit';
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { CONSUMER } from '../services/auditor/src/app.js';
import type { AuditStore } from '../services/auditor/src/store/audit-store.js';
import {
  burst,
  checkpointedSeq,
  cleanupAfterAll,
  countRows,
  headSeq,
  publisher,
  startAuditor,
  type TestAuditor,
  until,
  verdict,
  verifyChain,
} from './support/auditor.js';

const cleanups = cleanupAfterAll();

const storedIds = async (store: AuditStore): Promise<string[]> =>
  (await store.db.query<{ id: string }>('SELECT id FROM audit_events WHERE id IS NOT NULL')).map((r) => r.id);

async function readiness(auditor: TestAuditor): Promise<{ status: number; problems: string[] }> {
  const response = await fetch(`http://127.0.0.1:${auditor.httpPort}/readyz`);
  const body = (await response.json()) as { problems: string[] };
  return { status: response.status, problems: body.problems };
}

const occurrences = (text: string, what: string): number => text.split(what).length - 1;

describe('PostgreSQL stopped in the middle of a burst', () => {
  it('makes the auditor unready and retry without acknowledging; once back, every event is stored exactly once with an intact chain', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const postgres = await startPostgres();
    cleanups.push(() => postgres.destroy());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const auditor = await startAuditor(nats.url, postgres.url, { AOA_AUDITOR_BATCH_SIZE: '100' });
    cleanups.push(() => auditor.stop());

    const before = burst(audit, 1000);
    await until('some events stored', async () => (await headSeq(auditor.store)) >= 300);
    await postgres.stop();
    const storedBefore = await before;
    // The second half of the burst arrives while the database is down.
    const during = await burst(audit, 1000);
    await until('/readyz naming the unreachable store', async () => {
      const ready = await readiness(auditor);
      return ready.status === 503 && ready.problems.includes('audit store unreachable');
    });
    await until(
      'a batch refused twice (retried, not dropped)',
      async () => occurrences(auditor.logs.text(), 'audit store refused a batch') >= 2,
    );
    const unacknowledged = await jsm.consumers.info(STREAMS.audit, CONSUMER);
    assert.ok(
      unacknowledged.num_pending + unacknowledged.num_ack_pending > 0,
      'the backlog stays in JetStream while the store is down',
    );

    await postgres.start();
    await until('all 2000 events stored', async () => (await headSeq(auditor.store)) >= 2000, 90_000);
    const ids = [...storedBefore, ...during];
    assert.equal(await countRows(auditor.store), 2000, 'one row per stream sequence');
    assert.equal(
      await countRows(auditor.store, 'marker IS NULL'),
      2000,
      'no marker rows: nothing stored twice',
    );
    assert.deepEqual((await storedIds(auditor.store)).sort(), [...ids].sort());
    assert.equal(auditor.isWriter(), true);
    assert.equal(auditor.logs.text().includes('ingest session ended by an error'), false);

    await until('the consumer drained', async () => {
      const info = await jsm.consumers.info(STREAMS.audit, CONSUMER);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    await until('/readyz ready again', async () => (await readiness(auditor)).status === 200);
    const metrics = await (await fetch(`http://127.0.0.1:${auditor.httpPort}/metrics`)).text();
    assert.match(metrics, /^aoa_auditor_write_failures_total [1-9]/m);
    await until('a checkpoint of the head', async () => (await checkpointedSeq(auditor.store)) === 2000);
    assert.deepEqual(verdict(await verifyChain(auditor)), { ok: true, checked: 2000, problems: [] });
  });
});

describe('events the stream discarded before the auditor stored them', () => {
  it('are chained as one lost-range marker that VerifyChain reports, and ingestion carries on', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const dir = await mkdtemp(join(tmpdir(), 'aoa-audit-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);

    // A stream that keeps only its last 20 messages; the auditor adopts it as it finds it.
    await jsm.streams.add({
      name: STREAMS.audit,
      subjects: [new Subjects('aoa').auditAll()],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs: 20,
    });
    const first = await startAuditor(nats.url, dir);
    const kept = await burst(audit, 10);
    await until('10 rows', async () => (await headSeq(first.store)) >= 10);
    await first.stop();
    // While the auditor is away, sequences 11..40 arrive and the stream's limit drops 11..20 unstored.
    await burst(audit, 10);
    const after = await burst(audit, 20);
    assert.equal((await jsm.streams.info(STREAMS.audit)).state.first_seq, 21);

    const second = await startAuditor(nats.url, dir);
    cleanups.push(() => second.stop());
    await until('the chain past the lost range', async () => (await headSeq(second.store)) >= 40);
    assert.equal(await countRows(second.store), 31, '10 events, one marker for 11..20, 20 events');
    const markers = await second.store.select('marker IS NOT NULL', [], 10);
    assert.deepEqual(
      markers.map((r) => [r.seq, r.marker, r.data]),
      [
        [
          20,
          'lost',
          { from_seq: 11, to_seq: 20, count: 10, reason: 'discarded by the stream before it was stored' },
        ],
      ],
    );
    assert.deepEqual((await storedIds(second.store)).sort(), [...kept, ...after].sort());
    await until('the consumer drained', async () => {
      const info = await jsm.consumers.info(STREAMS.audit, CONSUMER);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });

    await until('a checkpoint of the head', async () => (await checkpointedSeq(second.store)) === 40);
    const verdict = await verifyChain(second);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.checked, 31);
    assert.equal(verdict.problems.length, 1, verdict.problems.join('\n'));
    assert.match(
      verdict.problems[0] ?? '',
      /^seqs 11\.\.20 lost: the stream discarded 10 event\(s\) before the auditor stored them \(marker row seq 20, recorded .+\)$/,
    );
  });
});
