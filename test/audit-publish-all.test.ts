import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AUDIT_BATCH_MAX_BYTES,
  type AuditEnvelope,
  AuditPublisher,
  AuditUnavailable,
  createLogger,
  ensureAuditStream,
  STREAMS,
  StreamPublisher,
  Subjects,
} from '@aoa/core';
import { type NatsServer, startNats } from '@aoa/testkit';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

// AuditPublisher.publishAll, as DelegateBatch uses it: events published together travel in as few
// messages as the batch bound allows, in order, and any one unacknowledged message rejects the lot.

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: StreamPublisher;
let audit: AuditPublisher;
const log = createLogger({ service: 'test', level: 'silent' });

before(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, noAsyncTraces: true });
  jsm = await jetstreamManager(nc);
  await ensureAuditStream(jsm, new Subjects('aoa'));
  publisher = new StreamPublisher(nc);
  audit = new AuditPublisher(publisher, new Subjects('aoa'), 'test/all', log);
});

after(async () => {
  publisher?.close();
  await nc?.close();
  await nats?.stop();
});

const event = (n: number, pad = '') => audit.envelope('key.prepared', `kid-${n}`, { kid: `kid-${n}`, pad });

/** The messages stored after `afterSeq`: subject and body. */
async function messagesAfter(afterSeq: number): Promise<Array<{ subject: string; body: string }>> {
  const { state } = await jsm.streams.info(STREAMS.audit);
  const out: Array<{ subject: string; body: string }> = [];
  for (let seq = afterSeq + 1; seq <= state.last_seq; seq += 1) {
    const msg = await jsm.streams.getMessage(STREAMS.audit, { seq });
    if (msg) out.push({ subject: msg.subject, body: msg.string() });
  }
  return out;
}

const lastSeq = async () => (await jsm.streams.info(STREAMS.audit)).state.last_seq;
const ids = (body: string) => (JSON.parse(body) as { events: AuditEnvelope[] }).events.map((e) => e.id);

describe('AuditPublisher.publishAll', () => {
  it('publishes nothing for no event, and a lone event as publishEnvelope would, on its own subject', async () => {
    const start = await lastSeq();
    await audit.publishAll([]);
    assert.equal(await lastSeq(), start);
    const lone = event(1);
    await audit.publishAll([lone]);
    assert.deepEqual(await messagesAfter(start), [
      { subject: 'aoa.audit.key.prepared', body: JSON.stringify(lone) },
    ]);
  });

  it('sends several events as one aoa.audit.batch message, in order, de-duplicated by its first id', async () => {
    const start = await lastSeq();
    const events = [event(1), event(2), event(3)];
    await audit.publishAll(events);
    await audit.publishAll(events);
    const stored = await messagesAfter(start);
    assert.deepEqual(
      stored.map((m) => m.subject),
      ['aoa.audit.batch'],
      'a second publish of the same batch is a duplicate the stream does not store',
    );
    assert.equal(stored[0]?.body, `{"events":[${events.map((e) => JSON.stringify(e)).join(',')}]}`);
  });

  it('splits events beyond the batch bound into several messages, each within it, the order kept', async () => {
    const start = await lastSeq();
    const events = Array.from({ length: 700 }, (_, i) => event(i, 'x'.repeat(700)));
    const huge = event(700, 'y'.repeat(AUDIT_BATCH_MAX_BYTES));
    const tail = event(701);
    await audit.publishAll([...events, huge, tail]);
    const stored = await messagesAfter(start);
    const batches = stored.filter((m) => m.subject === 'aoa.audit.batch');
    assert.ok(batches.length >= 2, `${batches.length} batch messages`);
    for (const m of batches) assert.ok(Buffer.byteLength(m.body) <= AUDIT_BATCH_MAX_BYTES);
    assert.deepEqual(
      batches.flatMap((m) => ids(m.body)),
      events.map((e) => e.id),
    );
    // One event larger than the bound travels alone on its own subject, as any single event does;
    // the one after it, alone at the end, too.
    assert.deepEqual(
      stored.slice(batches.length).map((m) => [m.subject, (JSON.parse(m.body) as AuditEnvelope).id]),
      [
        ['aoa.audit.key.prepared', huge.id],
        ['aoa.audit.key.prepared', tail.id],
      ],
    );
  });

  it('rejects with AuditUnavailable when any one message is not acknowledged (fail closed)', async () => {
    await jsm.streams.add({ name: 'FULL', subjects: ['full.audit.>'], max_msgs: 1, discard: 'new' as never });
    const full = new AuditPublisher(publisher, new Subjects('full'), 'test/full', log);
    const events = Array.from({ length: 400 }, (_, i) => event(i, 'x'.repeat(1000)));
    await assert.rejects(full.publishAll(events), AuditUnavailable);
    assert.equal((await jsm.streams.info('FULL')).state.messages, 1, 'only the first message was stored');
  });
});
