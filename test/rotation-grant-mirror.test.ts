import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentRecord, createLogger, GrantMirror, grantKeys } from '@aoa/core';
import { captureLogs, type NatsServer, startNats } from '@aoa/testkit';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { grantRecord } from './support/rotator.js';

const grant = (id: string, createdAtMs: number) => grantRecord(id, { created_at_ms: createdAtMs });
const agent = (grantId: string, id: string): AgentRecord => ({
  grant: grantId,
  agent: id,
  enc_jwk: {},
  dpop_jwk: {},
  dpop_jkt: 'jkt',
  enrolled_at_ms: 1,
});

describe('GrantMirror', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let mirror: GrantMirror;
  const logs = captureLogs();

  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    kv = await new Kvm(nc).create('mirror_test', { history: 1, storage: 'file' });
    await kv.put(grantKeys.grant('existing-1'), JSON.stringify(grant('existing-1', 2)));
    await kv.put(grantKeys.lease('existing-1'), JSON.stringify({ holder: 'x', until_ms: 0, next_due_ms: 0 }));
    mirror = new GrantMirror(kv, nc, createLogger({ service: 'test', destination: logs.stream }));
    await mirror.start();
  });

  after(async () => {
    mirror?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('holds every grant in the bucket once started, and nothing else', () => {
    assert.deepEqual(
      mirror.grants().map((g) => g.id),
      ['existing-1'],
    );
  });

  it('follows writes, enrolments and deletes, and reads its own writes', async () => {
    const revision = await kv.put(grantKeys.grant('newer-01'), JSON.stringify(grant('newer-01', 1)));
    await kv.put(grantKeys.agent('newer-01', 'web-1'), JSON.stringify(agent('newer-01', 'web-1')));
    assert.ok(await mirror.waitFor(revision));
    assert.deepEqual(
      mirror.grants().map((g) => g.id),
      ['newer-01', 'existing-1'],
    );
    await kv.delete(grantKeys.grant('existing-1'));
    assert.ok(await mirror.catchUp());
    assert.deepEqual(
      mirror.grants().map((g) => g.id),
      ['newer-01'],
    );
    assert.deepEqual(
      mirror.agents('newer-01').map((a) => a.agent),
      ['web-1'],
    );
  });

  it('drops a malformed entry instead of serving what the key held before', async () => {
    await kv.put(grantKeys.grant('newer-01'), JSON.stringify({ id: 'another-id' }));
    assert.ok(await mirror.catchUp());
    assert.deepEqual(mirror.grants(), []);
    assert.match(logs.text(), /ignoring malformed grant-store entry/);
  });

  it('is synchronised again after nats-server restarts, including changes made while it was away', async () => {
    await nats.restart();
    // Written by another replica right after the restart: the re-synchronised view must hold it.
    const deadline = Date.now() + 15_000;
    let written = 0;
    while (written === 0) {
      written = await kv.put(grantKeys.grant('after-01'), JSON.stringify(grant('after-01', 3))).catch(() => {
        // JetStream may refuse for a moment while the restarted server recovers its streams.
        if (Date.now() > deadline) throw new Error('JetStream did not come back');
        return 0;
      });
    }
    while (!mirror.grants().some((g) => g.id === 'after-01') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(await mirror.waitFor(written));
    // The old watch resumes by itself and may deliver the write before the fresh view replaces it.
    while (!/grant view re-synchronised after reconnect/.test(logs.text()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.match(logs.text(), /grant view re-synchronised after reconnect/);
    assert.deepEqual(
      mirror.grants().map((g) => g.id),
      ['after-01'],
    );
  });
});
