import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNats } from './nats-server.js';

describe('startNats', () => {
  it('starts a server with JetStream that accepts a stream', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({ name: 'TESTKIT', subjects: ['testkit.>'] });
      assert.equal(info.config.name, 'TESTKIT');
    } finally {
      await nc.close();
    }
  });

  it('keeps streams and messages across a restart on the same port and store', async () => {
    await using nats = await startNats();
    const before = { port: nats.port, storeDir: nats.storeDir };
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'DURABLE', subjects: ['durable.>'] });
    await jsm.jetstream().publish('durable.one', 'kept');
    await nc.close();

    await nats.restart();

    assert.deepEqual({ port: nats.port, storeDir: nats.storeDir }, before);
    const again = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(again)).streams.info('DURABLE');
      assert.equal(info.state.messages, 1);
    } finally {
      await again.close();
    }
  });

  it('removes the store directory on stop, and stop is idempotent', async () => {
    const nats = await startNats();
    assert.ok(existsSync(nats.storeDir));
    await nats.stop();
    await nats.stop();
    assert.equal(existsSync(nats.storeDir), false);
    await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 1_000 }));
  });

  it('starts without JetStream when asked', async () => {
    await using nats = await startNats({ jetstream: false });
    const nc = await connect({ servers: nats.url });
    try {
      await assert.rejects(jetstreamManager(nc));
    } finally {
      await nc.close();
    }
  });
});
