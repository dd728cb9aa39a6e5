import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auditor as auditorPb } from '@aoa/proto';
import { createDatabase, startNats } from '@aoa/testkit';
import { status } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { linkHash } from '../services/auditor/src/domain/chain.js';
import { lineageOf } from '../services/auditor/src/read/lineage.js';
import { queryEvents } from '../services/auditor/src/read/query.js';
import {
  burst,
  checkpointedSeq,
  cleanupAfterAll,
  countRows,
  headSeq,
  lineage,
  publisher,
  query,
  startAuditor,
  systemAccess,
  until,
  verdict,
  verifyChain,
} from './support/auditor.js';
import { dpopProof, makeKey } from './support/oauth.js';
import { callDelegate, rootDelegateAsArgocd, startSystem } from './support/system.js';

const cleanups = cleanupAfterAll();

async function postgresUrl(): Promise<string> {
  const db = await createDatabase();
  cleanups.push(() => db.drop());
  return db.url;
}

async function pgliteDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-audit-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('events published by a real issuer', () => {
  it('are stored exactly once with an intact chain, and answer Query and a three-level Lineage', async () => {
    const sys = await startSystem();
    cleanups.push(() => sys.stop());
    const auditor = await startAuditor(sys.nats.url, await postgresUrl(), {}, systemAccess(sys));
    cleanups.push(() => auditor.stop());
    const holder = await makeKey();
    const root = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics', 'write:dashboards'],
      holderJkt: holder.jkt,
    });
    const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
    const jobsKey = await makeKey('ES256');
    const child = await callDelegate(
      sys.client,
      {
        subjectToken: root.accessToken,
        child: 'jobs',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: jobsKey.jkt,
      },
      { dpop: await dpopProof(holder, 'POST', htu, root.accessToken) },
    );
    const reportsKey = await makeKey();
    const grandchild = await callDelegate(
      sys.client,
      {
        subjectToken: child.accessToken,
        child: 'reports',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: reportsKey.jkt,
      },
      { dpop: await dpopProof(jobsKey, 'POST', htu, child.accessToken) },
    );

    const issued = await until('three delegation.issued events', async () => {
      const found = await query(auditor, { types: ['delegation.issued'] });
      return found.length >= 3 && found;
    });
    assert.deepEqual(
      issued.map((e) => e.data?.jti),
      [root.jti, child.jti, grandchild.jti],
    );
    const stored = await countRows(auditor.store, 'marker IS NULL');
    assert.equal(
      stored,
      Number(
        (await auditor.store.db.query<{ n: unknown }>('SELECT count(DISTINCT id) AS n FROM audit_events'))[0]
          ?.n,
      ),
    );
    assert.equal(
      await countRows(auditor.store),
      await headSeq(auditor.store),
      'every stream sequence has one row',
    );

    const jobsInProd = await query(auditor, { app: 'jobs', env: 'prod', outcome: 'issued' });
    assert.deepEqual(
      jobsInProd.map((e) => e.data?.jti),
      [child.jti],
    );
    assert.deepEqual(jobsInProd[0]?.data?.scopes_granted, ['read:metrics']);

    const tree = await lineage(auditor, child.jti);
    assert.deepEqual(
      tree.ancestors.map((n) => [n.jti, n.child]),
      [[root.jti, 'dashboards']],
    );
    assert.equal(tree.node?.child, 'jobs');
    assert.deepEqual(
      tree.node?.children.map((n) => [n.jti, n.child]),
      [[grandchild.jti, 'reports']],
    );
    await assert.rejects(
      lineage(auditor, 'no-such-jti'),
      (e: { code: number }) => e.code === status.NOT_FOUND,
    );
    await assert.rejects(
      query(auditor, { types: ["x' or 1=1"] }),
      (e: { code: number; details: string }) =>
        e.code === status.INVALID_ARGUMENT && /^types:/.test(e.details),
    );
    await assert.rejects(
      query(auditor, { pageToken: 'unknown-event' }),
      (e: { code: number }) => e.code === status.INVALID_ARGUMENT,
    );

    await until(
      'a checkpoint of the head',
      async () => (await checkpointedSeq(auditor.store)) === (await headSeq(auditor.store)),
    );
    const base = `http://127.0.0.1:${auditor.httpPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { ready: true, problems: [] });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^aoa_auditor_events_stored_total [1-9]/m);
    assert.match(metrics, /^aoa_auditor_active_writer 1$/m);
    assert.deepEqual(verdict(await verifyChain(auditor)), {
      ok: true,
      checked: await headSeq(auditor.store),
      problems: [],
    });
  });
});

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`tokens a standing grant minted (${kind})`, () => {
    it("answer Lineage as roots, and an owner's Query holds their events and their descendants', not another client's", async () => {
      const nats = await startNats();
      cleanups.push(() => nats.stop());
      const { nc, audit } = await publisher(nats.url);
      cleanups.push(() => nc.close());
      const auditor = await startAuditor(
        nats.url,
        kind === 'postgres' ? await postgresUrl() : await pgliteDir(),
      );
      cleanups.push(() => auditor.stop());
      const [grant, minted, child, foreign] = [
        'grant-aaaaaaaa',
        'jti-minted-by-grant',
        'jti-delegated-below',
        'jti-of-ci',
      ];
      await audit.publish('grant.created', grant, { id: grant, parent_client: 'argocd', app: 'dashboards' });
      await audit.publish('grant.minted', grant, {
        grant_id: grant,
        parent_client: 'argocd',
        sub: 'idp:corp:argocd-sa',
        child: 'dashboards',
        env: 'prod',
        scopes: ['read:metrics'],
        deliveries: [{ agent: 'agent-1', jti: minted, exp: 1, kid: 'k1' }],
      });
      // The agent's credential sub-delegated to jobs; and a root token of another client.
      await audit.publish('delegation.issued', child, {
        jti: child,
        client_id: 'app:dashboards',
        child: 'jobs',
        env: 'prod',
        scopes_granted: ['read:metrics'],
        lineage: [minted],
        parent_jti: minted,
      });
      await audit.publish('delegation.issued', foreign, {
        jti: foreign,
        client_id: 'client:ci',
        child: 'jobs',
        lineage: [],
      });
      await until('four events stored', async () => (await headSeq(auditor.store)) >= 4);

      const tree = await lineage(auditor, minted);
      assert.deepEqual(tree.ancestors, []);
      assert.deepEqual(
        [tree.node?.jti, tree.node?.child, tree.node?.scopes],
        [minted, 'dashboards', ['read:metrics']],
      );
      assert.deepEqual(
        tree.node?.children.map((n) => n.jti),
        [child],
      );

      // The request as the gRPC handler receives it, with an owner's clients.
      const filter = auditorPb.QueryRequest.fromPartial({ limit: 100 });
      const seen = async (clients: string[]) =>
        (await queryEvents(auditor.store, { ...filter, clients })).map((row) => `${row.type} ${row.subject}`);
      assert.deepEqual(await seen(['argocd']), [
        `grant.created ${grant}`,
        `grant.minted ${grant}`,
        `delegation.issued ${child}`,
      ]);
      assert.deepEqual(await seen(['ci']), [`delegation.issued ${foreign}`]);
      assert.deepEqual(await seen([]), []);

      // Below a grant's token, the root is the grant's mint, requested by its parent client.
      const below = await lineageOf(auditor.store, child);
      assert.deepEqual(
        below.ancestors.map((n) => [n.jti, n.child, n.clientId]),
        [[minted, 'dashboards', 'client:argocd']],
      );

      // The grant moves to ci (a policy grant keeps its id): what follows is ci's, not argocd's.
      await audit.publish('grant.updated', grant, { id: grant, parent_client: 'ci', app: 'dashboards' });
      await audit.publish('join_token.created', grant, { grant_id: grant });
      await until('six events stored', async () => (await headSeq(auditor.store)) >= 6);
      assert.deepEqual(await seen(['argocd']), [
        `grant.created ${grant}`,
        `grant.minted ${grant}`,
        `delegation.issued ${child}`,
      ]);
      assert.deepEqual(await seen(['ci']), [
        `delegation.issued ${foreign}`,
        `grant.updated ${grant}`,
        `join_token.created ${grant}`,
      ]);
    });
  });

  describe(`an auditor stopped in the middle of a burst (${kind})`, () => {
    it('stores every event exactly once after a restart, and VerifyChain names edits, deletions and truncation', async () => {
      const nats = await startNats();
      cleanups.push(() => nats.stop());
      const db = kind === 'postgres' ? await postgresUrl() : await pgliteDir();
      const { nc, audit } = await publisher(nats.url);
      cleanups.push(() => nc.close());
      const first = await startAuditor(nats.url, db, { AOA_AUDITOR_BATCH_SIZE: '100' });
      const published = burst(audit, 2000);
      await until('some events stored', async () => (await headSeq(first.store)) >= 300);
      await first.stop();
      const ids = await published;
      const second = await startAuditor(nats.url, db);
      cleanups.push(() => second.stop());
      await until('all 2000 events stored', async () => (await headSeq(second.store)) >= 2000, 60_000);
      assert.equal(await countRows(second.store), 2000);
      assert.equal(
        await countRows(second.store, 'marker IS NULL'),
        2000,
        'no marker rows: nothing stored twice',
      );
      const storedIds = new Set(
        (await second.store.db.query<{ id: string }>('SELECT id FROM audit_events')).map((r) => r.id),
      );
      assert.deepEqual([...storedIds].sort(), [...ids].sort());
      await until('a checkpoint of the head', async () => (await checkpointedSeq(second.store)) === 2000);
      assert.deepEqual(verdict(await verifyChain(second)), { ok: true, checked: 2000, problems: [] });
      if (kind === 'pglite') return;

      // A chain recomputed after an edit passes row by row; only the signed checkpoints catch it.
      const sql = second.store.db;
      await sql.query(`UPDATE audit_events SET data = '{"kid":"forged"}' WHERE seq = 10`);
      const rows = await second.store.rowsAfter({ seq: 9, part: 0 }, 5000);
      let prev = (await second.store.rowsAfter({ seq: 8, part: 0 }, 1))[0]!.hash;
      for (const row of rows) {
        const hash = linkHash(prev, row);
        await sql.query('UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3', [
          prev,
          hash,
          row.seq,
        ]);
        prev = hash;
      }
      const recomputed = await verifyChain(second);
      assert.equal(recomputed.ok, false);
      assert.ok(recomputed.problems.length > 0);
      for (const problem of recomputed.problems)
        assert.match(problem, /^checkpoint at seq \d+ .* the chain was rewritten$/);

      await sql.query(`UPDATE audit_events SET subject = 'kid-forged' WHERE seq = 30`);
      await sql.query('DELETE FROM audit_events WHERE seq = 50');
      const tampered = await verifyChain(second);
      assert.ok(
        tampered.problems.some((p) => /^row seq 30 \(event .+\) was edited/.test(p)),
        tampered.problems.join('\n'),
      );
      assert.ok(
        tampered.problems.includes('row seq 50 deleted: gap in the stream sequence between 49 and 51'),
      );

      await sql.query('DELETE FROM audit_events WHERE seq > 1995');
      const truncated = await verifyChain(second);
      assert.ok(
        truncated.problems.some((p) =>
          /^tail missing: checkpoint at seq 2000 .* but the chain ends at seq 1995$/.test(p),
        ),
        truncated.problems.join('\n'),
      );
    });
  });
}

describe('bad events', () => {
  it('go to dead_letters with a reason and a marker row; late duplicates become marker rows; the consumer keeps going', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const auditor = await startAuditor(nats.url, await pgliteDir(), { AOA_AUDITOR_MAX_EVENT_BYTES: '2048' });
    cleanups.push(() => auditor.stop());
    const js = jetstream(nc);
    const valid = audit.envelope('key.prepared', 'kid-1', { kid: 'kid-1' });
    await js.publish('aoa.audit.x', '{not json');
    await js.publish(
      'aoa.audit.bogus.thing',
      JSON.stringify({ ...valid, id: 'bogus-000001', type: 'bogus.thing' }),
    );
    await js.publish(
      'aoa.audit.key.prepared',
      JSON.stringify({ ...valid, id: 'big-0000001', data: { pad: 'x'.repeat(4096) } }),
    );
    await js.publish(
      'aoa.audit.key.prepared',
      JSON.stringify({ ...valid, id: 'bad-time-001', time: 'yesterday' }),
    );
    await js.publish('aoa.audit.key.prepared', JSON.stringify(valid));
    await js.publish('aoa.audit.key.prepared', JSON.stringify(valid)); // no msgID: a second stream message
    await burst(audit, 10);
    await until('16 rows', async () => (await headSeq(auditor.store)) >= 16);
    const dead = await auditor.store.deadLetters();
    assert.deepEqual(
      dead.map((d) => [d.seq, d.reason.replace(/\d+ bytes/, 'N bytes')]),
      [
        [1, 'invalid JSON'],
        [2, 'unknown type bogus.thing'],
        [3, 'oversized: N bytes, limit 2048'],
        [4, 'schema: time: must be an RFC 3339 timestamp'],
      ],
    );
    const markers = await auditor.store.db.query<{ seq: unknown; marker: string }>(
      'SELECT seq, marker FROM audit_events WHERE marker IS NOT NULL ORDER BY seq',
    );
    assert.deepEqual(
      markers.map((m) => [Number(m.seq), m.marker]),
      [
        [1, 'dead_letter'],
        [2, 'dead_letter'],
        [3, 'dead_letter'],
        [4, 'dead_letter'],
        [6, 'duplicate'],
      ],
    );
    assert.equal(await countRows(auditor.store, 'marker IS NULL'), 11);
    await until('a checkpoint of the head', async () => (await checkpointedSeq(auditor.store)) === 16);
    assert.deepEqual(verdict(await verifyChain(auditor)), { ok: true, checked: 16, problems: [] });
  });
});

describe('batch messages', () => {
  it("store each event of a message as its own row, in order, paged and verified across the message's parts", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const auditor = await startAuditor(nats.url, await pgliteDir());
    cleanups.push(() => auditor.stop());
    const event = (kid: string, pad = '') => audit.envelope('key.prepared', kid, { kid, pad });
    const single = event('kid-single');
    await audit.publishEnvelope(single);
    // Four events in one message: the second a late duplicate of the single event, the third one
    // PostgreSQL cannot hold (a NUL character), which is dead-lettered alone.
    const batch = [
      event('kid-b0'),
      { ...single },
      { ...event('kid-b2'), subject: 'a\u0000b' },
      event('kid-b3'),
    ];
    await audit.publishAll(batch);
    // More than AUDIT_BATCH_MAX_BYTES of events: several messages, still in order.
    const many = Array.from({ length: 600 }, (_, i) => event(`kid-m${i}`, 'x'.repeat(600)));
    await audit.publishAll(many);
    const info = await jetstream(nc)
      .jetstreamManager()
      .then((jsm) => jsm.streams.info('AOA_AUDIT'));
    const messages = info.state.messages;
    assert.ok(
      messages >= 4 && messages <= 6,
      `600 events of ~800 bytes in 2-4 messages, got ${messages - 2}`,
    );
    await until('every row', async () => (await countRows(auditor.store)) === 605);

    const rows = await auditor.store.db.query<{
      seq: unknown;
      part: unknown;
      id: string | null;
      marker: string | null;
    }>('SELECT seq, part, id, marker FROM audit_events ORDER BY seq, part LIMIT 5');
    assert.deepEqual(
      rows.map((r) => [Number(r.seq), Number(r.part), r.id, r.marker]),
      [
        [1, 0, single.id, null],
        [2, 0, batch[0]!.id, null],
        [2, 1, null, 'duplicate'],
        [2, 2, null, 'dead_letter'],
        [2, 3, batch[3]!.id, null],
      ],
    );
    assert.deepEqual(await auditor.store.deadLetters(), [
      {
        seq: 2,
        part: 2,
        reason: 'events[2]: schema: NUL character in event',
        natsSubject: 'aoa.audit.batch',
      },
    ]);
    // Query pages one event at a time straight through the message at seq 2.
    const paged: string[] = [];
    let pageToken = '';
    for (let i = 0; i < 4; i += 1) {
      const [next] = await query(auditor, { limit: 1, pageToken });
      if (!next) break;
      paged.push(next.id);
      pageToken = next.id;
    }
    assert.deepEqual(paged, [single.id, batch[0]!.id, batch[3]!.id, many[0]!.id]);
    await until('a checkpoint of the head', async () => (await checkpointedSeq(auditor.store)) === messages);
    assert.deepEqual(verdict(await verifyChain(auditor)), { ok: true, checked: 605, problems: [] });

    // The head message's last part deleted by hand: the writer goes on from what is there, and
    // VerifyChain names the missing part and the checkpoint that signed it.
    const head = await auditor.store.db.query<{ seq: unknown; part: unknown }>(
      'SELECT seq, part FROM audit_events ORDER BY seq DESC, part DESC LIMIT 1',
    );
    const [seq, part] = [Number(head[0]?.seq), Number(head[0]?.part)];
    assert.ok(part > 0, 'the head is a later part of a batch message');
    await auditor.store.db.query('DELETE FROM audit_events WHERE seq = $1 AND part = $2', [seq, part]);
    await audit.publishEnvelope(event('kid-after'));
    await until('the next event stored', async () => (await countRows(auditor.store)) === 605);
    const { ok, problems } = await verifyChain(auditor);
    assert.equal(ok, false);
    assert.ok(
      problems.includes(`row seq ${seq} part ${part} deleted: gap in the events of message seq ${seq}`),
      problems.join('\n'),
    );
  });
});

describe('a database that refuses writes', () => {
  it('gets nothing acknowledged until it accepts again; then every event is stored once', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const auditor = await startAuditor(nats.url, await postgresUrl());
    cleanups.push(() => auditor.stop());
    await burst(audit, 20);
    await until('20 rows', async () => (await headSeq(auditor.store)) >= 20);
    await auditor.store.db.exec(`
      CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
      CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit();`);
    await burst(audit, 200);
    await until('a refused batch', async () => auditor.logs.text().includes('audit store refused a batch'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await headSeq(auditor.store), 20);
    await auditor.store.db.exec('DROP TRIGGER refuse ON audit_events');
    await until('220 rows', async () => (await headSeq(auditor.store)) >= 220, 30_000);
    assert.equal(await countRows(auditor.store, 'marker IS NULL'), 220);
    await until('a checkpoint of the head', async () => (await checkpointedSeq(auditor.store)) === 220);
    assert.deepEqual(verdict(await verifyChain(auditor)), { ok: true, checked: 220, problems: [] });
  });
});

describe('two auditors started at once', () => {
  it('let only the lease holder write; the standby takes over when it stops', async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const { nc, audit } = await publisher(nats.url);
    cleanups.push(() => nc.close());
    const db = await postgresUrl();
    const [a, b] = await Promise.all([startAuditor(nats.url, db), startAuditor(nats.url, db)]);
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    await burst(audit, 300);
    await until('300 rows', async () => (await headSeq(a.store)) >= 300);
    assert.equal([a, b].filter((x) => x.isWriter()).length, 1);
    const writer = a.isWriter() ? a : b;
    const standby = writer === a ? b : a;
    assert.equal(standby.logs.text().includes('writing the audit chain'), false);
    await writer.stop();
    await burst(audit, 100);
    await until('400 rows', async () => (await headSeq(standby.store)) >= 400, 30_000);
    assert.equal(standby.isWriter(), true);
    assert.equal(await countRows(standby.store, 'marker IS NULL'), 400);
    await until('a checkpoint of the head', async () => (await checkpointedSeq(standby.store)) === 400);
    assert.deepEqual(verdict(await verifyChain(standby)), { ok: true, checked: 400, problems: [] });
  });
});
