import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openBucket } from '@aoa/core';
import { type NatsServer, startNats } from '@aoa/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

// Replicas of a service started together (a Deployment rolling out, `docker-compose up`) all find a
// bucket missing and race to create it: every one of them must end up with the bucket.

let nats: NatsServer;
const connections: NatsConnection[] = [];

before(async () => {
  nats = await startNats();
  for (let i = 0; i < 16; i++) connections.push(await connect({ servers: nats.url, noAsyncTraces: true }));
});
after(async () => {
  for (const nc of connections) await nc.close();
  await nats?.stop();
});

describe('openBucket', () => {
  it('gives every replica the bucket when sixteen create it at once', async () => {
    for (let round = 0; round < 20; round++) {
      const name = `race_${round}`;
      const buckets = await Promise.all(
        connections.map((nc) => openBucket(new Kvm(nc), name, { replicas: 1, maxAgeMs: 60_000 })),
      );
      await buckets[0]?.put('k', 'v');
      for (const kv of buckets)
        assert.equal((await kv.get('k'))?.string(), 'v', `${name}: one bucket for all`);
    }
  });

  it('still refuses when another stream holds the bucket subjects, with the server answer', async () => {
    const nc = connections[0] as NatsConnection;
    await (await jetstreamManager(nc)).streams.add({ name: 'SQUATTER', subjects: ['$KV.squatted.>'] });
    await assert.rejects(openBucket(new Kvm(nc), 'squatted', { replicas: 1 }), /subjects overlap/);
  });
});
