import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppError, ReplayGuard, StreamPublishError, StreamPublisher } from '@aoa/core';
import { type NatsServer, startNats } from '@aoa/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

// The publisher every service's audit events and replay claims go through: only the stream's
// acknowledgement resolves; everything else rejects, and nothing is left waiting.

let nats: NatsServer;
let nc: NatsConnection;
let publisher: StreamPublisher;

before(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'], duplicate_window: 60e9 });
  await jsm.streams.add({ name: 'TINY', subjects: ['tiny.>'], max_msgs: 1, discard: 'new' as never });
  publisher = new StreamPublisher(nc);
});

after(async () => {
  publisher?.close();
  await nc?.close();
  await nats?.stop();
});

describe('StreamPublisher', () => {
  it('resolves with the stream and sequence, and each concurrent publish gets its own acknowledgement', async () => {
    const acks = await Promise.all(
      Array.from({ length: 200 }, (_, i) => publisher.publish(`events.${i % 7}`, JSON.stringify({ i }))),
    );
    assert.ok(acks.every((a) => a.stream === 'EVENTS' && !a.duplicate));
    assert.equal(new Set(acks.map((a) => a.seq)).size, 200);
    const info = await (await jetstreamManager(nc)).streams.info('EVENTS');
    assert.equal(info.state.messages, 200);
  });

  it('sets Nats-Msg-Id: a second message with the same id is acknowledged as a duplicate and not stored', async () => {
    const first = await publisher.publish('events.dup', 'one', { msgID: 'event-1' });
    const second = await publisher.publish('events.dup', 'two', { msgID: 'event-1' });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    const stored = await (await jetstreamManager(nc)).streams.getMessage('EVENTS', {
      last_by_subj: 'events.dup',
    });
    assert.equal(stored?.string(), 'one');
  });

  it('rejects with JetStream’s err_code when the stream refuses the message', async () => {
    await publisher.publish('tiny.a', 'fits');
    await assert.rejects(publisher.publish('tiny.b', 'does not'), (error: unknown) => {
      assert.ok(error instanceof StreamPublishError);
      assert.equal(error.code, 10077);
      assert.match(error.message, /stream refused the message: maximum messages exceeded/);
      return true;
    });
  });

  it('rejects a message no stream captures (no responders), at once', async () => {
    await assert.rejects(publisher.publish('nowhere.at.all', 'x', { timeout: 30_000 }), {
      name: 'StreamPublishError',
      message: 'no stream listens on the subject (no responders)',
    });
  });

  it('rejects when no acknowledgement arrives within the timeout, and ignores the late one', async () => {
    const frozen = await connect({ servers: nats.url, noAsyncTraces: true });
    const late = new StreamPublisher(frozen);
    try {
      // A subscriber that never answers stands in for a stream that does not acknowledge in time.
      frozen.subscribe('silent.subject', { callback: () => undefined });
      await frozen.flush();
      await assert.rejects(late.publish('silent.subject', 'x', { timeout: 150 }), {
        message: 'no acknowledgement within 150 ms',
      });
    } finally {
      late.close();
      await frozen.close();
    }
  });

  it('rejects what is in flight when the connection drops, and after it is closed', async () => {
    await using own = await startNats({ jetstream: false });
    const conn = await connect({ servers: own.url, noAsyncTraces: true, reconnectTimeWait: 50 });
    const dropped = new StreamPublisher(conn);
    try {
      conn.subscribe('silent.other', { callback: () => undefined });
      await conn.flush();
      const refused = assert.rejects(dropped.publish('silent.other', 'x', { timeout: 60_000 }), {
        message: 'connection lost before the acknowledgement',
      });
      await own.restart();
      await refused;
      await conn.close();
      await assert.rejects(dropped.publish('events.after', 'x'), { message: 'connection closed' });
    } finally {
      dropped.close();
    }
  });

  it('holds a message published while the server is down and writes it once the connection is back', async () => {
    await using own = await startNats();
    const conn = await connect({ servers: own.url, noAsyncTraces: true, reconnectTimeWait: 50 });
    const held = new StreamPublisher(conn);
    try {
      await (await jetstreamManager(conn)).streams.add({ name: 'HELD', subjects: ['held.>'] });
      const statuses = conn.status()[Symbol.asyncIterator]();
      let waiting: Promise<unknown> | undefined;
      await own.restart({
        whileDown: async () => {
          while ((await statuses.next()).value?.type !== 'disconnect');
          waiting = held.publish('held.one', 'x', { timeout: 10_000 });
        },
      });
      assert.deepEqual(await waiting, { stream: 'HELD', seq: 1, duplicate: false });
      const stored = await (await jetstreamManager(conn)).streams.getMessage('HELD', { seq: 1 });
      assert.equal(stored?.string(), 'x');
    } finally {
      held.close();
      await conn.close();
    }
  });

  it('close() rejects what still waits', async () => {
    const own = new StreamPublisher(nc);
    nc.subscribe('silent.third', { callback: () => undefined });
    await nc.flush();
    const waiting = own.publish('silent.third', 'x', { timeout: 60_000 });
    own.close();
    await assert.rejects(waiting, { message: 'publisher closed' });
  });

  it('jetstream(nc) satisfies the same interface, so either can back an AuditPublisher', async () => {
    const ack = await jetstream(nc).publish('events.js', 'x', { msgID: 'via-js' });
    assert.equal(ack.stream, 'EVENTS');
  });
});

describe('ReplayGuard over StreamPublisher', () => {
  it('claims a jti once across replicas and refuses the second claim as a replay', async () => {
    await new Kvm(nc).create('aoa_replay', { history: 1, ttl: 60_000 });
    const replicaA = new ReplayGuard(publisher);
    const replicaB = new ReplayGuard(new StreamPublisher(nc));
    const outcomes = await Promise.allSettled([
      replicaA.claim('ca', 'argocd', 'jti-1'),
      replicaB.claim('ca', 'argocd', 'jti-1'),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refusal = (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
    assert.ok(refusal instanceof AppError);
    assert.equal(refusal.code, 'unauthenticated');
    assert.equal(refusal.reason, 'PROOF_REPLAYED');
    assert.equal(refusal.message, 'client assertion jti was already used (replay)');
    // The same jti from another client, or as a DPoP proof, is another key.
    await replicaA.claim('ca', 'ci', 'jti-1');
    await replicaA.claim('dpop', 'argocd', 'jti-1');
    await assert.rejects(replicaB.claim('dpop', 'argocd', 'jti-1'), {
      message: 'DPoP proof jti was already used (replay)',
    });
  });

  it('says the replay store is unavailable when its bucket does not exist', async () => {
    const guard = new ReplayGuard(publisher, 'no_such_bucket');
    await assert.rejects(guard.claim('ca', 'argocd', 'jti-2'), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'unavailable');
      assert.equal(error.message, 'replay store unavailable');
      return true;
    });
  });
});
